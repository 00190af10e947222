"""The API methods: one module per method family, named so that the method name finds the file
(``doc.tags.add`` → ``methods/doc/tags.py``, ``album.docs.getList`` → ``methods/album/docs.py``,
``api.methods.get`` → ``methods/api_methods.py``). Each module owns a ``MethodGroup``; ``GROUPS``
lists them all explicitly (nothing is discovered).

Shared pieces sit in ``common.py`` (and a family package's ``shared.py``); method modules never
import each other. May import everything below it: ``api.content``, ``api.media``, ``api.auth``,
``api.runtime``, ``api.models``, ``api.core``, ``api.formats``, ``api.signing``, ``api.config``,
``keys``.
"""

from __future__ import annotations

from api.core.registry import Registry
from api.methods import (
    account,
    api_methods,
    auth,
    explore,
    faves,
    network,
    tags,
    test,
    upload,
    user,
)
from api.methods.album import docs as album_docs
from api.methods.album import edit as album_edit
from api.methods.album import read as album_read
from api.methods.doc import albums as doc_albums
from api.methods.doc import comments as doc_comments
from api.methods.doc import edit as doc_edit
from api.methods.doc import lists as doc_lists
from api.methods.doc import notes as doc_notes
from api.methods.doc import read as doc_read
from api.methods.doc import tags as doc_tags
from api.methods.folder import albums as folder_albums
from api.methods.folder import edit as folder_edit
from api.methods.folder import read as folder_read
from api.methods.group import docs as group_docs
from api.methods.group import read as group_read
from api.methods.post import comments as post_comments
from api.methods.post import edit as post_edit
from api.methods.post import read as post_read

GROUPS = (
    test.group,            # test.*
    api_methods.group,     # api.methods.*
    auth.group,            # auth.*
    user.group,            # user.*
    account.group,         # account.*
    upload.group,          # upload.*
    doc_read.group,        # doc.get, doc.getMedias, doc.getExif, doc.getVisitors
    doc_lists.group,       # doc.getList, doc.search, doc.getContext, doc.checkMD5
    doc_edit.group,        # doc.set*, doc.getPerms, doc.delete
    doc_tags.group,        # doc.tags.*
    doc_notes.group,       # doc.notes.*
    doc_comments.group,    # doc.comments.*
    doc_albums.group,      # doc.albums.add, doc.getContainers
    album_read.group,      # album.get, album.getList, album.getVisitors
    album_edit.group,      # album.create, album.edit, album.delete, album.setPerms, album.orderList
    album_docs.group,      # album.docs.*
    explore.group,         # explore.docs.*, explore.groups.getRandom
    tags.group,            # tags.docs.getList, tags.user.*
    network.group,         # network.getList, network.autocomplete, network.docs.getRecent
    faves.group,           # faves.docs.*, faves.albums.*
    folder_read.group,     # folder.get, folder.getList
    folder_edit.group,     # folder.create, folder.edit, folder.delete, folder.orderList
    folder_albums.group,   # folder.albums.*
    group_read.group,      # group.get, group.getList, group.search
    group_docs.group,      # group.docs.*
    post_read.group,       # post.get, getList, search, getContext, getFaves, getVisitors
    post_edit.group,       # post.set
    post_comments.group,   # post.comments.*
)


def build_registry() -> Registry:
    """The registry of every method this server answers."""
    return Registry.from_groups(GROUPS)
