"""The ``folder.*`` family: ``read`` (folder.get, getList), ``edit`` (create, edit, delete,
orderList), ``albums`` (folder.albums.*). Folders are ordered sets of their owner's albums."""
