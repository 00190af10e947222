"""The ``account.*`` family: ``account.getQuota``, the caller's upload allowance this month, what
was used of it, the largest file per media type, and the albums (spec §6.5; docs/uploads.md).
"""

from __future__ import annotations

import math
from typing import Any

from api.core.context import Call
from api.core.registry import MethodGroup
from api.media.queue import month_usage
from api.methods.common import WRITE, _max_file_bytes
from api.models.docs import Album

group = MethodGroup()
QUOTA_MEDIA = ("photo", "audio", "video", "other")  # the order of spec §6.5


@group.method(
    "account.getQuota", title="Return the calling user upload quota.", token=True, sign=True,
    perms=WRITE,
    response='<quota user_id="1234" is_pro="0">\n  <upload unlimited="0">\n'
             '    <max bytes="10737418240" kb="10485760" mb="10240" percent="100" '
             'seconds="7200"/>\n'
             '    <used bytes="262144000" kb="256000" mb="250" percent="3" seconds="125"/>\n'
             '    <left bytes="10475274240" kb="10229760" mb="9990" percent="97" '
             'seconds="7075"/>\n'
             '  </upload>\n  <maxfilesize>\n    <photo bytes="104857600" kb="102400" mb="100"/>\n'
             '    …\n  </maxfilesize>\n  <albums max="2048" created="32" left="2016"/>\n</quota>')
def get_quota(call: Call) -> dict[str, Any]:
    """Your upload allowance this month, what you used of it, the largest file per media type and
    your albums."""
    user = call.require_user()
    settings = call.ctx.settings
    used, seconds = month_usage(user, call.now())
    limit = settings.monthly_upload_bytes
    # PRO: "unlimited", an internal limit raised by whole steps when reached (spec §6.5).
    ceiling = limit * max(1, math.ceil(used / limit)) if user.is_pro else limit
    used_percent = min(100, math.ceil(used * 100 / ceiling))
    max_seconds = settings.monthly_video_seconds
    albums = Album.select().where(Album.owner == user).count()
    return {"quota": {
        "user_id": user.id, "is_pro": user.is_pro,
        "upload": {
            "unlimited": user.is_pro,
            "max": _amount(ceiling) | {"percent": 100, "seconds": max_seconds},
            "used": _amount(used) | {"percent": used_percent, "seconds": seconds},
            "left": _amount(max(0, ceiling - used)) | {"percent": 100 - used_percent,
                                                       "seconds": max(0, max_seconds - seconds)},
        },
        "maxfilesize": {media: _amount(_max_file_bytes(call, media)) for media in QUOTA_MEDIA},
        "albums": {"max": settings.max_albums, "created": albums,
                   "left": max(0, settings.max_albums - albums)},
    }}


def _amount(size: int) -> dict[str, int]:
    return {"bytes": size, "kb": size // 1024, "mb": size // (1024 * 1024)}
