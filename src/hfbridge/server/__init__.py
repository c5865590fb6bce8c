"""``hfbridge serve``: the Inference API served locally with real transformers inference.

Needs the ``server`` extra. :func:`hfbridge.server.app.create_app` builds the FastAPI app;
:mod:`hfbridge.server.registry` maps model ids to weights; :mod:`hfbridge.server.backends` holds
one backend family per group of tasks.
"""

import warnings

# tqdm.auto, imported by the model libraries, warns in notebooks without ipywidgets; the server
# shows no progress bars, so the warning would only confuse someone embedding it in a notebook.
warnings.filterwarnings("ignore", message="IProgress not found")
