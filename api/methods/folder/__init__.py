"""The ``folder.*`` family: ``read`` (folder.get, getList), ``edit`` (create, edit, delete,
orderList), ``albums`` (folder.albums.*). Folders are ordered sets of their owner's albums.

Only the owner changes a folder, and puts only their own albums in it. Anyone reads a folder (it
has no visibility of its own) and sees in it only the albums they may see: counts and covers are
the caller's. ``shared.py`` holds what two sub-modules need; the sub-modules never import each
other. Same layer as ``api.methods``.
"""
