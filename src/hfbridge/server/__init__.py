"""``hfbridge serve``: the Inference API served locally with real transformers inference.

Needs the ``server`` extra. :func:`hfbridge.server.app.create_app` builds the FastAPI app;
:mod:`hfbridge.server.registry` maps model ids to weights; :mod:`hfbridge.server.backends` holds
one backend family per group of tasks.
"""
