"""``api.methods.getList`` and ``api.methods.get``, generated from the registry (spec §7)."""

from __future__ import annotations

from typing import Annotated, Any

from api.core.context import Call
from api.core.errors import COMMON_ERRORS, method_error
from api.core.registry import METHOD_HELP_PATH, MethodGroup, MethodSpec
from api.formats.tree import ListOf, Text

group = MethodGroup()

UnknownMethod = method_error(1, "Method not found", "The requested method was not found.")


def _authentication(spec: MethodSpec) -> dict[str, Any]:
    flags = {"token": spec.token, "sign": spec.sign, "post": spec.post}
    if spec.safety:
        flags["safety"] = True
    return flags


def _permissions(spec: MethodSpec) -> Any:
    # "" for the test.* methods, [] when empty, {"doc": "write"} otherwise (spec §7.1).
    return Text("") if spec.perms is None else dict(spec.perms)


def summary(spec: MethodSpec, base_url: str) -> dict[str, Any]:
    """One ``<method>`` of getList; ``about`` is the method's page on this server."""
    return {"name": spec.name, "service": spec.service, "title": Text(spec.title),
            "about": Text(base_url + METHOD_HELP_PATH + spec.name),
            "modified_at": Text(spec.modified_at),
            "authentication": _authentication(spec), "permissions": _permissions(spec)}


@group.method("api.methods.getList", title="Return the API methods list", service="api.method",
              keyless=True, response='<methods><method name="doc.delete" '
              'service="doc"><authentication token="0" sign="0" post="0"/><permissions/>'
              '<title>Delete a document</title></method></methods>')
def get_list(call: Call) -> dict:
    """Every method this server answers, with its flags and permissions."""
    return {"methods": {"method": [summary(spec, call.base_url) for spec in call.ctx.registry]}}


@group.method("api.methods.get", title="Return information about an API method.",
              service="api.method", errors=(UnknownMethod,),
              response='<method name="api.methods.get" service="api.method"><authentication '
              'token="0" sign="0" post="0"/><title>Return information about an API method.'
              '</title><parameters><param name="api_key" required="1">Your api_key.</param>'
              '</parameters><response/><errors><error code="1" message="Method not found">The '
              'requested method was not found.</error></errors></method>')
def get(call: Call,
        method: Annotated[str, "The name of the method to return information for."] = "") -> dict:
    """Returns the parameters, response example and error codes of one method."""
    spec = call.ctx.registry.get(method)
    if spec is None:
        raise UnknownMethod(method)
    params = [{"name": "api_key", "required": 1, "_value": "Your api_key."}]
    params += [{"name": p.name, "required": 1 if p.required else None, "_value": p.help}
               for p in spec.params]
    notes = (ListOf("note", [{"for": "params", "_value": spec.notes}])
             if spec.notes else Text(""))
    errors = [{"code": e.code, "label": e.label or None, "message": e.message,
               "_value": e.description} for e in spec.errors + COMMON_ERRORS]
    return {"method": {
        "name": spec.name, "service": spec.service, "title": Text(spec.title),
        "authentication": _authentication(spec), "permissions": _permissions(spec),
        "parameters": ListOf("param", params, text_key="value"),
        "notes": notes, "response": Text(spec.response),
        "errors": {"error": errors},
    }}
