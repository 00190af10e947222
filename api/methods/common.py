"""What several method families share: permission requirements and the method-specific errors whose
code and wording are the same wherever they appear (spec §3.2)."""

from __future__ import annotations

from api.core.errors import method_error

READ = {"doc": "read"}
WRITE = {"doc": "write"}

DocNotFound = method_error(1, "Document not found", "The document ID is invalid or insufficient "
                                                    "permissions to view this doc.")
UserNotFound = method_error(1, "User not found", "The user ID is either invalid or the account is "
                                                 "closed/suspended.")
InvalidArgument = method_error(2, "Invalid argument", "One or many required arguments were not "
                                                      "sent or have an invalid value.")
