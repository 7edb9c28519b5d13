"""Content safety: prompts and completions screened by pluggable filters (docs/content-safety.md).

- filters.py: the four categories, the severity scale, the Filter interface, judging against a threshold;
- baseline.py: the built-in offline word and phrase list;
- moderation.py: an OpenAI-style `/v1/moderations` service;
- guard.py: a guard model (Llama Guard style) deployed from the catalog, reached through the router;
- screen.py: the request path: the prompt, a whole completion, a stream as it goes;
- settings.py: the router's settings and which endpoint is screened at what threshold;
- config.py: the filters those settings choose, and each request's screening.
"""
