"""The ``post.*`` family: ``read`` (post.get, getList, search, getContext, getFaves,
getVisitors), ``edit`` (post.set), ``comments`` (post.comments.*)."""
