"""The ``test.*`` family: a hello and an echo for checking a client's set-up."""

from __future__ import annotations

from typing import Annotated

from api.core.context import Call
from api.core.errors import method_error
from api.core.registry import MethodGroup
from api.formats.tree import Text

group = MethodGroup()

NothingSent = method_error(1, "Nothing was sent", "We could not echo back as the echo parameter "
                                                  "was empty or not sent.")


@group.method("test.hello", title="Hello world!", perms=None,
              response="<hello>hello world!</hello>")
def hello(call: Call) -> dict:
    """This method returns a simple hello world!"""
    return {"hello": Text("hello world!")}


@group.method("test.echo", title="A simple echo test.", perms=None, missing=NothingSent,
              response="<echo>yes, it worked</echo>")
def echo(call: Call, echo: Annotated[str, "Some text we will echo back to you."]) -> dict:
    """This method echoes to you any given parameter."""
    return {"echo": Text(echo)}
