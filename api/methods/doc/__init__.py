"""The ``doc.*`` family, one module per sub-family: ``read`` (doc.get, getMedias, getExif,
getVisitors), ``lists`` (getList, search, getContext, checkMD5), ``edit`` (set, setPerms, getPerms,
setLicense, setGeo, setSafety, delete), ``tags`` (doc.tags.*), ``notes`` (doc.notes.*),
``comments`` (doc.comments.*), ``albums`` (doc.albums.add, doc.getContainers).

Every method finds the doc through its visibility first: a doc the caller may not see answers like
a missing one. Codes of tags, notes and comments are the same across them: 1 not found, 2 bad or
missing argument, 3 not allowed. ``shared.py`` holds what two sub-modules need; the sub-modules
never import each other. Same layer as ``api.methods``.
"""
