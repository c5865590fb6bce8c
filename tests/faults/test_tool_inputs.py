"""Agent tools cannot be turned against their host: files are read only inside the allowed
folders, URLs fetched only if public (checked after DNS resolution and after every redirect),
and a refusal is a tool error the agent reads, in both frameworks, sync and async."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolCall, ToolMessage

import hfbridge.tool_inputs as tool_inputs
from hfbridge import InferenceClient, Task
from hfbridge.langchain import TOOL_CLASSES, HFInferenceToolkit
from hfbridge.llama_index import HFInferenceToolSpec
from hfbridge.tool_inputs import ToolInputPolicy, ToolInputRefused, is_public_address
from tests.scripted_server import Reply, ScriptedServer

M = "org/model"
PNG = (Path(__file__).resolve().parents[1] / "assets" / "image.png").read_bytes()
ROUTE = f"/models/{M}/image-classification"
LABELS = Reply(body=[{"label": "cat", "score": 0.9}])


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False), ("127.9.9.9", False), ("::1", False),
    ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False), ("169.254.169.254", False), ("fe80::1", False),
    ("fc00::1", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False), ("::ffff:127.0.0.1", False),
    ("::ffff:8.8.8.8", True), ("fe80::1%eth0", False), ("not-an-address", False),
])
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "cat.png").write_bytes(PNG)
    (outside / "id_rsa").write_text("-----BEGIN PRIVATE KEY-----")
    (allowed / "link.png").symlink_to(outside / "id_rsa")
    return {"allowed": allowed, "outside": outside}


def test_files_only_inside_the_allowed_folders(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    allowed, outside = files["allowed"], files["outside"]
    policy = ToolInputPolicy.make([allowed])
    assert policy.read_file(str(allowed / "cat.png"), "image") == PNG
    refused = [str(outside / "id_rsa"), str(allowed / ".." / "outside" / "id_rsa"), str(allowed / "link.png"), "/etc/passwd"]
    for path in refused:
        with pytest.raises(ToolInputRefused, match="outside the folders") as info:
            policy.read_file(path, "image")
        assert info.value.field == "image"
    with pytest.raises(ToolInputRefused, match="not a regular file"):
        policy.read_file(str(allowed), "image")
    with pytest.raises(ToolInputRefused):
        ToolInputPolicy.make([]).read_file(str(allowed / "cat.png"), "image")
    monkeypatch.chdir(allowed)  # the default: the working directory when the policy is made
    default = ToolInputPolicy.make()
    assert default.read_file("cat.png", "image") == PNG
    with pytest.raises(ToolInputRefused):
        default.read_file("../outside/id_rsa", "image")


@pytest.fixture
def servers() -> Any:
    """The inference server, and a 'media' server on loopback (a private address)."""
    with ScriptedServer() as api, ScriptedServer() as media:
        api.on(ROUTE, LABELS)
        media.on("/cat.png", Reply(body=PNG, headers={"Content-Type": "image/png"}))
        yield api, media


def _refused_inputs(media: ScriptedServer, files: dict[str, Path]) -> list[str]:
    port = media.url.rsplit(":", 1)[1]
    return [f"{media.url}/cat.png", f"http://localhost:{port}/cat.png", "http://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd", str(files["outside"] / "id_rsa"), str(files["allowed"] / "link.png")]


def test_langchain_tool_refusals_go_back_to_the_agent(servers: Any, files: dict[str, Path]) -> None:
    api, media = servers
    tool = TOOL_CLASSES[Task.IMAGE_CLASSIFICATION](base_url=api.url, model=M, allowed_dirs=[str(files["allowed"])])
    for value in _refused_inputs(media, files):
        for message in (tool.invoke(ToolCall(name=tool.name, args={"image": value}, id="1", type="tool_call")),
                        asyncio.run(tool.ainvoke(ToolCall(name=tool.name, args={"image": value}, id="2", type="tool_call")))):
            assert isinstance(message, ToolMessage) and message.status == "error", (value, message)
            assert "refused" in message.content or "not a readable file" in message.content, message.content
    assert api.requests == [] and media.requests == []  # nothing was fetched, nothing sent on
    ok = tool.invoke(ToolCall(name=tool.name, args={"image": str(files["allowed"] / "cat.png")}, id="3", type="tool_call"))
    assert ok.status == "success" and "cat" in ok.content and api.requests[0].body == PNG
    tool.close()


def test_llama_index_tool_refusals_are_error_outputs(servers: Any, files: dict[str, Path]) -> None:
    api, media = servers
    with HFInferenceToolSpec(api.url, tasks=["image-classification"], models={"image-classification": M},
                             allowed_dirs=[files["allowed"]]) as spec:
        tool = spec.to_tool_list()[0]
        for value in _refused_inputs(media, files):
            for output in (tool.call(image=value), asyncio.run(tool.acall(image=value))):
                assert output.is_error and isinstance(output.exception, ToolInputRefused), (value, output)
                assert "refused" in output.content or "not a readable file" in output.content
        assert api.requests == [] and media.requests == []
        assert not tool.call(image=str(files["allowed"] / "cat.png")).is_error


@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
def test_private_urls_when_the_developer_allows_them_are_fetched_here_and_sent_as_bytes(framework: str, servers: Any) -> None:
    api, media = servers
    if framework == "langchain":
        tool = HFInferenceToolkit(base_url=api.url, models={"image-classification": M}, tasks=["image-classification"],
                                  allow_private_urls=True).get_tools()[0]
        assert "cat" in tool.invoke({"image": f"{media.url}/cat.png"})
        assert "cat" in asyncio.run(tool.ainvoke({"image": f"{media.url}/cat.png"}))
    else:
        tool = HFInferenceToolSpec(api.url, tasks=["image-classification"], models={"image-classification": M},
                                   allow_private_urls=True).to_tool_list()[0]
        assert "cat" in tool.call(image=f"{media.url}/cat.png").content
        assert "cat" in asyncio.run(tool.acall(image=f"{media.url}/cat.png")).content
    # the spec layout would accept {"inputs": url}; the tool never lets the server fetch it
    assert [r.body for r in api.requests] == [PNG, PNG]
    assert [r.path for r in media.requests] == ["/cat.png", "/cat.png"]
    assert all("authorization" not in r.headers for r in media.requests)


@pytest.fixture
def loopback_is_private_but_127_0_0_2_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """All test servers are on loopback; to see the checks made after DNS and redirects, one
    loopback address plays a public host (the rule is swapped, the checking code is not)."""
    monkeypatch.setattr(tool_inputs, "is_public_address", lambda address: address == "127.0.0.2")


@pytest.mark.usefixtures("loopback_is_private_but_127_0_0_2_is_public")
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_public_only_downloads_check_every_connection(kind: str) -> None:
    with ScriptedServer("127.0.0.2") as public, ScriptedServer() as private:
        private.on("/secret.png", Reply(body=PNG, headers={"Content-Type": "image/png"}))
        port = private.url.rsplit(":", 1)[1]
        public.on("/cat.png", Reply(body=PNG, headers={"Content-Type": "image/png"}))
        public.on("/to-literal", Reply(302, b"", headers={"Location": f"{private.url}/secret.png"}))
        public.on("/to-name", Reply(302, b"", headers={"Location": f"http://localhost:{port}/secret.png"}))

        def download(url: str) -> bytes:
            if kind == "sync":
                with InferenceClient(public.url, token=False) as client:
                    return client.download(url, public_only=True)
            from hfbridge import AsyncInferenceClient

            async def main() -> bytes:
                async with AsyncInferenceClient(public.url, token=False) as client:
                    return await client.download(url, public_only=True)

            return asyncio.run(main())

        assert download(f"{public.url}/cat.png") == PNG  # a "public" host is fetched
        for url in (f"{public.url}/to-literal", f"{public.url}/to-name", f"http://localhost:{port}/secret.png"):
            with pytest.raises(ToolInputRefused, match="refused"):
                download(url)
        assert private.requests == [], "a private address was reached"
        assert [r.path for r in public.requests] == ["/cat.png", "/to-literal", "/to-name"]


def test_the_allowed_folders_of_a_toolkit_are_fixed_when_it_is_made(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(files["allowed"])
    tools = HFInferenceToolkit(base_url="http://127.0.0.1:9", tasks=["image-classification"]).get_tools()
    monkeypatch.chdir(files["outside"])
    assert tools[0].runner.policy.allowed_dirs == (Path(os.path.realpath(files["allowed"])),)
