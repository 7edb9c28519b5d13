"""The workspace router: the OpenAI-compatible data plane in front of an endpoint's model servers.

`python -m modelcatalog.router` (see settings.py for the environment it reads). Rules a caller sees:

- Endpoint choice: `POST /v1/<api>` routes by the body's `model` field, which names the endpoint
  (what `GET /v1/models` lists); `POST /endpoints/<endpoint>/v1/<api>` names it in the path and the
  body's `model` may be anything. The backend always receives the deployment's served model name:
  the body's original bytes are forwarded when `model` already says it (or the deployment names no
  served model), otherwise the body is re-encoded with only `model` changed.
- Credentials: `Authorization: Bearer <key or token>` or `api-key: <key or token>`.
- 401 when the credential is missing or is not a key of this endpoint (a key of another endpoint
  gets the same 401: the router does not reveal that a key is valid elsewhere); 403 only in token
  mode, when the token is valid but may not `score` the deployment that would serve the request.
- Traffic: weighted random over the endpoint's deployments that have a ready pod (trafficPercent as
  weight); `x-modelcatalog-deployment: <name>` pins one; least outstanding requests across its pods.
- ServerlessEndpoints: once the key is checked, to the serverless gateway (gateway.py, the same code in
  `--mode gateway`), which meters and forwards to the shared pool or the upstream provider.
- Content safety (safety/, docs/content-safety.md): a screened deployment's prompt is refused with 400
  `content_filter`; a blocked completion, streamed or not, ends with `finish_reason: content_filter`.
"""
