"""One router per resource, all mounted under `/api/v1` by `loopml.server.app`."""
