"""The launcher, the sub-WebUIs and the HTTP API: thin front-ends over ``GPT_SoVITS`` and ``tools``."""
