"""The ``group.*`` family: ``read`` (group.get, getList, search), ``docs`` (group.docs.*)."""
