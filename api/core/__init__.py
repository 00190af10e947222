"""The protocol's machinery, knowing nothing of documents: transport (falcon request → ApiRequest),
dispatch (the numbered pipeline), registry (@method, MethodSpec), context (AppContext, Call),
errors (the one table), permissions (areas and levels), paging, ids.

May import ``api.formats``, ``api.signing``, ``api.config`` and ``keys``; nothing above.
"""
