"""The ``album.*`` family: ``read`` (album.get, getList, getVisitors), ``edit`` (create, edit,
delete, setPerms, orderList), ``docs`` (album.docs.*). ``doc.albums.add`` and ``doc.getContainers``
are in ``methods/doc/albums.py``; album membership and per-album numbers both families use are in
``api/content/albums.py``.

Albums are ordered sets of their owner's docs. Only the owner changes an album; anyone who may see
it reads it, and sees only the docs they may see in it. ``shared.py`` holds what two sub-modules
need; the sub-modules never import each other. Same layer as ``api.methods``.
"""
