"""The licence table (spec §10.4): each ``license`` code and the licence it names.

doc.setLicense, doc.search and upload.file check codes against it and word their help from it;
who may fetch an original depends on it (``COPYRIGHT``: only the owner).
"""

from __future__ import annotations

COPYRIGHT = 0  # all rights reserved: the original goes to its owner only (trees.may_download)
LICENSES: dict[int, str] = {
    COPYRIGHT: "Copyright",
    1: "CC by",
    3: "CC by-nc",
    5: "CC by-nd",
    7: "CC by-nc-nd",
    9: "CC by-sa",
    11: "CC by-nc-sa",
    255: "Copyleft / free use",
}
LICENSE_CODES = tuple(LICENSES)


def codes_in_words() -> str:
    """``0, 1, 3, 5, 7, 9, 11 or 255``: the codes as a help text lists them."""
    *first, last = map(str, LICENSE_CODES)
    return f"{', '.join(first)} or {last}"


def codes_listed() -> str:
    """``0,1,3,5,7,9,11,255``: the codes as a comma list a parameter takes."""
    return ",".join(map(str, LICENSE_CODES))
