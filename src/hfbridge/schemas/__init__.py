"""Pydantic models of the API's bodies, shared by the client and ``hfbridge serve``.

One definition serves both sides: the client validates what the user gave against the request
models before anything is sent, and the server validates what arrives against the very same
models, so the two can never disagree about a field. Requests are strict, responses lenient
(see :mod:`._base`).

* :mod:`.tasks`: the task routes' requests and answers (the spec's components, plus the hosted
  API's and TGI's documented parameters for the same tasks);
* :mod:`.chat`: chat completions in the OpenAI shape, with tools and response formats;
* :mod:`.grammar`: JSON-schema and regex constraints (TGI's ``grammar``);
* :mod:`.hosted`: the tasks the hosted API serves beyond the spec's (document and visual QA,
  zero-shot image classification, audio-to-audio, image-to-image, tabular);
* :mod:`.serving`: the server-side routes TEI and OpenAI-compatible servers add (rerank,
  predict, ``/v1/embeddings``).
"""

from pydantic import BaseModel as _BaseModel

from . import chat as _chat
from . import grammar as _grammar
from . import hosted as _hosted
from . import serving as _serving
from . import tasks as _tasks
from .chat import *  # noqa: F401,F403
from .grammar import *  # noqa: F401,F403
from .hosted import *  # noqa: F401,F403
from .serving import *  # noqa: F401,F403
from .tasks import *  # noqa: F401,F403
from .tasks import _Request, _Response  # noqa: F401  (the server's models derive from them)

__all__ = sorted(
    {
        name
        for module in (_tasks, _chat, _grammar, _hosted, _serving)
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (name in getattr(module, "__all__", ()) or (isinstance(value, type) and issubclass(value, _BaseModel) and value.__module__ == module.__name__))
    }
)
