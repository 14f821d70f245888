"""The openai backend against a real OpenAI-compatible HTTP server on 127.0.0.1 (stdlib, canned
completions): order under concurrency, stop strings, token usage, retries, 4xx errors, a stage."""

from __future__ import annotations

import email.utils
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from selfspec.errors import BackendError
from selfspec.generation import Sampling
from selfspec.generation.openai_api import OpenAIGenerator

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "fixtures" / "generation"


class Handler(BaseHTTPRequestHandler):
    """``/v1/models`` and ``/v1/completions``; the server's ``fail`` list scripts error statuses."""

    def do_GET(self):
        self.reply(200, {"data": [{"id": "canned-model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(
            {**body, "auth": self.headers.get("Authorization"), "at": time.monotonic()}
        )
        with self.server.lock:
            status = self.server.fail.pop(0) if self.server.fail else 200
        if status != 200:
            return self.reply(status, {"error": {"message": f"scripted {status}"}}, self.server.retry_after)
        if body["model"] != "canned-model":
            return self.reply(404, {"error": {"message": f"model {body['model']!r} does not exist"}})
        text = f" answer to [{body['prompt'][-12:]}] seed {body['seed']} ### tail"
        usage = {"prompt_tokens": len(body["prompt"].split()), "completion_tokens": 7}
        self.reply(200, {"choices": [{"text": text, "finish_reason": "stop"}], "usage": usage})

    def reply(self, status, payload, retry_after: str | None = None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.requests, httpd.fail, httpd.lock, httpd.retry_after = [], [], threading.Lock(), None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(httpd) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def test_completions_keep_prompt_order_under_concurrency(server):
    gen = OpenAIGenerator(url(server), api_key="k", concurrency=4, backoff=0.01)
    prompts = [f"prompt number {i:02d}" for i in range(10)]
    out = gen.generate(prompts, Sampling(16, 0.7, 0.9, stop=("###",)), seed=100)
    assert gen.model == "canned-model"  # asked the server, none configured
    assert [c.text for c in out] == [f" answer to [{p[-12:]}] seed {100 + i} " for i, p in enumerate(prompts)]
    assert all(c.completion_tokens == 7 and c.prompt_tokens == 3 for c in out)
    assert {r["auth"] for r in server.requests} == {"Bearer k"}
    assert server.requests[0]["stop"] == ["###"] and server.requests[0]["max_tokens"] == 16


def test_overload_is_retried_with_backoff(server):
    server.fail = [503, 429]
    gen = OpenAIGenerator(url(server), concurrency=1, backoff=0.01, max_retries=3)
    assert gen.generate(["a prompt"], Sampling(8), 0)[0].text.startswith(" answer")
    assert len(server.requests) == 3


def test_persistent_server_errors_give_up_loudly(server):
    server.fail = [500] * 10
    gen = OpenAIGenerator(url(server), concurrency=1, backoff=0.01, max_retries=2)
    with pytest.raises(BackendError, match=r"HTTP 500: scripted 500 \(gave up after 2 retries\)"):
        gen.generate(["a prompt"], Sampling(8), 0)
    assert len(server.requests) == 3


def test_a_servers_retry_after_is_honoured(server):
    server.fail, server.retry_after = [429], "0.5"
    gen = OpenAIGenerator(url(server), concurrency=1, backoff=0.001, max_retries=2)
    assert gen.generate(["a prompt"], Sampling(8), 0)[0].text.startswith(" answer")
    first, second = server.requests
    assert second["at"] - first["at"] >= 0.5  # the backoff alone would wait at most 1 ms


def test_backoff_is_exponential_with_full_jitter_and_retry_after_wins():
    from types import SimpleNamespace

    from selfspec.generation.openai_api import _retry_after, _Retryable, backoff_wait

    wait = backoff_wait(backoff=1.0, cap=8.0)
    failed = SimpleNamespace(exception=lambda: _Retryable("HTTP 503"))
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 8.0), (9, 8.0)]:
        draws = [wait(SimpleNamespace(attempt_number=attempt, outcome=failed)) for _ in range(40)]
        assert all(0 <= d <= ceiling for d in draws) and len(set(draws)) > 30  # spread, not in lockstep
        assert max(draws) > ceiling / 2
    told = SimpleNamespace(exception=lambda: _Retryable("HTTP 429", retry_after=3.0))
    assert wait(SimpleNamespace(attempt_number=1, outcome=told)) == 3.0
    told_too_long = SimpleNamespace(exception=lambda: _Retryable("HTTP 429", retry_after=900.0))
    assert wait(SimpleNamespace(attempt_number=1, outcome=told_too_long)) == 8.0
    # Retry-After is delta-seconds or an HTTP date (RFC 9110)
    assert _retry_after("7") == 7.0 and _retry_after(None) is None and _retry_after("soon") is None
    in_20s = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 18 <= _retry_after(in_20s) <= 20


def test_a_4xx_fails_at_once_with_the_servers_message(server):
    gen = OpenAIGenerator(url(server), model="no-such-model", backoff=0.01)
    with pytest.raises(BackendError, match="HTTP 404: model 'no-such-model' does not exist.*not retried"):
        gen.generate(["a prompt"], Sampling(8), 0)
    assert len(server.requests) == 1


def test_gen_responses_runs_on_the_server_from_the_environment(server, in_tmp_repo, monkeypatch):
    from selfspec.config import default_params
    from selfspec.stages import gen_responses

    monkeypatch.setenv("SELFSPEC_OPENAI_BASE_URL", url(server))
    Path("seeds").mkdir()
    shutil.copy(FIXTURES / "seeds.jsonl", "seeds/biomedical.jsonl")
    Path("data/gen_inputs").mkdir(parents=True)
    record = {"id": "ins-1", "instruction": "What causes gout?", "input": "", "needs_input": False}
    Path("data/gen_inputs/inputs.jsonl").write_text(json.dumps({**record, "seed_ids": ["g2"]}) + "\n")
    overrides = ["generation.backend=openai", "gen_responses.retrieval=false"]
    gen_responses.main(default_params(overrides))
    out = json.loads(Path("data/gen_responses/responses.jsonl").read_text())
    assert out["output"].startswith("answer to [") and out["passages"] == []
    metrics = json.loads(Path("metrics/gen_responses.json").read_text())
    assert metrics["generator"]["backend"] == "openai" and metrics["completion_tokens"] == 7


def prompt_ids_seen_by_each_backend(gen, prompt: str, server) -> dict[str, list[int]]:
    """The ids each backend feeds its model for ``prompt``. transformers: its padded batch without
    the padding; vllm: what it passes to ``LLM.generate``; openai: the server's tokenization of the
    text it receives, with its tokenizer's special tokens, as ``vllm serve`` does."""
    from selfspec.generation.openai_api import OpenAIGenerator
    from selfspec.generation.vllm_backend import VLLMGenerator
    from tests.test_generation import FakeLLM, fake_vllm

    batch = gen._encode([prompt], 8)
    seen = {"transformers": batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist()}
    llm = FakeLLM(gen.tokenizer)
    with fake_vllm():
        VLLMGenerator(llm, "tiny").generate([prompt], Sampling(8), 0)
    seen["vllm"] = llm.prompts[0]["prompt_token_ids"]
    OpenAIGenerator(url(server), model="canned-model").generate([prompt], Sampling(8), 0)
    seen["openai"] = gen.tokenizer(server.requests[-1]["prompt"]).input_ids
    return seen


@pytest.mark.parametrize("bos", [True, False])
def test_all_backends_feed_the_model_the_same_prompt_tokens(trained_tiny, server, bos):
    from tests.test_generation_integration import tiny_generator

    gen = tiny_generator(trained_tiny, bos=bos)
    prompt = "Task 1: Explain the mechanism of action of aspirin.\nTask 2:"
    seen = prompt_ids_seen_by_each_backend(gen, prompt, server)
    assert seen["transformers"] == seen["vllm"] == seen["openai"]
    assert (seen["transformers"][0] == gen.tokenizer.bos_token_id) is bos
    # the batch's output is the model's continuation of exactly those ids
    out = gen.generate([prompt], Sampling(6, temperature=0), 0)[0]
    assert out.prompt_tokens == len(seen["transformers"])
