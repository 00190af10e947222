"""Media files: names (file names and URLs), storage backends, imaging (sniffing, EXIF,
thumbnails), the upload queue (queue: tickets, claims, the worker thread; worker: turning a ticket
into a doc) and route (the /media/ responder).

May import ``api.runtime``, ``api.models``, ``api.core`` and below; its siblings ``api.content``
(tags at upload) and ``api.auth`` without a cycle; never ``api.methods``, ``api.web``, ``api.app``.
"""
