"""A background flusher: ``flush`` every few seconds in a daemon thread, once more on stop."""

from __future__ import annotations

import threading


class PeriodicFlush:
    """Mixin for buffers that write in batches; subclasses define ``flush`` and ``interval``."""

    interval: float = 1.0
    thread_name: str = "flush"

    def flush(self) -> object:
        """Write what is buffered (subclasses)."""
        raise NotImplementedError

    def start(self) -> None:
        """Flush every ``interval`` seconds until ``stop`` (the server starts it, not an import)."""
        self._stop_event = threading.Event()

        def loop() -> None:
            while not self._stop_event.wait(self.interval):
                self.flush()

        self._thread = threading.Thread(target=loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then write what is left."""
        thread = getattr(self, "_thread", None)
        if thread is not None:
            self._stop_event.set()
            thread.join(timeout=10)
        self.flush()
