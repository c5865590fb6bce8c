"""Sample inputs shipped with the package, so that examples run without files of your own."""

from __future__ import annotations

from importlib import resources

__all__ = ["SPEECH_TRANSCRIPT", "sample_speech"]

#: what :func:`sample_speech` says
SPEECH_TRANSCRIPT = "a man said to the universe sir i exist"


def sample_speech() -> bytes:
    """4.6 s of English speech (FLAC, 16 kHz mono), the sample the hosted API's recorded
    exchanges use; its words are :data:`SPEECH_TRANSCRIPT`.

    ```python
    from hfbridge import InferenceClient
    from hfbridge.samples import sample_speech

    with InferenceClient("http://127.0.0.1:8000") as client:
        print(client.automatic_speech_recognition(sample_speech()).text)
    ```
    """
    return (resources.files("hfbridge") / "data" / "speech.flac").read_bytes()
