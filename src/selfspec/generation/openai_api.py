"""``openai`` backend: any OpenAI-compatible ``/v1/completions`` server (vLLM, TGI, llama.cpp...).

The connection comes only from the environment: ``SELFSPEC_OPENAI_BASE_URL`` (e.g.
``http://gpu-node:8000/v1``) and ``OPENAI_API_KEY`` (optional for servers without auth). Each
prompt is one request, ``generation.batch_size`` of them in flight at once. Overload and server
errors (429, 5xx, connection failures) are retried by ``tenacity``: exponential backoff with full
jitter (threads that failed together do not retry together), or the server's ``Retry-After`` when
it sends one. Any other 4xx is a mistake in the request (wrong model name, prompt too long) and
fails at once with the server's message. The prompt goes as text: the server adds the special
tokens its tokenizer adds (BOS or none), as the other backends do (``prompt_token_ids``). Each
request carries a seed derived from the batch seed, so servers that honour ``seed`` (vLLM) give
repeatable samples.
"""

from __future__ import annotations

import email.utils
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from selfspec.errors import BackendError
from selfspec.generation import Completion, Sampling, cut_at_stop

log = logging.getLogger(__name__)

BASE_URL_ENV = "SELFSPEC_OPENAI_BASE_URL"
KEY_ENV = "OPENAI_API_KEY"
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
MAX_WAIT = 60.0  # seconds: the longest backoff, and the longest Retry-After honoured


class _Retryable(Exception):
    """A failed attempt worth repeating; ``retry_after`` is the server's Retry-After in seconds."""

    def __init__(self, problem: str, retry_after: float | None = None):
        super().__init__(problem)
        self.problem, self.retry_after = problem, retry_after


def backoff_wait(backoff: float, cap: float = MAX_WAIT) -> Callable[[Any], float]:
    """tenacity wait: the server's Retry-After (at most ``cap``) when it sent one, else a uniform
    draw from [0, min(cap, backoff * 2**(attempt - 1))] (full jitter)."""
    from tenacity import wait_random_exponential

    jitter = wait_random_exponential(multiplier=backoff, max=cap)

    def wait(state) -> float:
        error = state.outcome.exception() if state.outcome else None
        after = getattr(error, "retry_after", None)
        return min(after, cap) if after is not None else jitter(state)

    return wait


class OpenAIGenerator:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        model: str = "",
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 120.0,
        backoff: float = 1.0,
    ):
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self.concurrency, self.max_retries, self.backoff = concurrency, max_retries, backoff
        self.model = model or self._served_model()
        self.merged: dict[str, Any] | None = None  # the adapter loaded by ``with_adapter``

    @classmethod
    def from_env(cls, gp) -> OpenAIGenerator:
        base_url = os.environ.get(BASE_URL_ENV, "")
        if not base_url:
            raise BackendError(
                f"generation.backend is 'openai' but {BASE_URL_ENV} is not set "
                "(e.g. http://localhost:8000/v1 for `vllm serve MODEL`)"
            )
        return cls(
            base_url,
            os.environ.get(KEY_ENV, ""),
            gp.openai_model,
            gp.batch_size,
            gp.max_retries,
            gp.request_timeout,
        )

    def describe(self) -> dict[str, Any]:
        described = {"backend": self.name, "model": self.model, "base_url": self.base_url}
        return described | ({"merged": self.merged} if self.merged else {})

    def with_adapter(self, adapter: Path, identity: dict[str, Any] | None = None) -> OpenAIGenerator:
        """Generate with a LoRA adapter loaded into the server by path (vLLM's runtime LoRA loading:
        ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True vllm serve BASE --enable-lora``, on a filesystem where
        ``adapter`` has the same absolute path), named by its digest so that a name is one adapter."""
        from selfspec.io import sha256_file

        sha = sha256_file(adapter / "adapter_model.safetensors")
        name = f"selfspec-{sha[:12]}"
        body = {"lora_name": name, "lora_path": str(adapter.resolve())}
        response = self.client.post("/load_lora_adapter", json=body)
        if response.status_code >= 400 and "already" not in response.text:  # loaded before: same digest
            raise BackendError(
                f"{self.base_url}/load_lora_adapter refused {adapter} ({response.status_code}: "
                f"{_message(response)}); start vLLM with --enable-lora and "
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"
            )
        self.model = name
        self.merged = {"adapter": adapter.as_posix(), "adapter_sha256": sha} | (identity or {})
        return self

    def generate(self, prompts: Sequence[str], sampling: Sampling, seed: int) -> list[Completion]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [pool.submit(self._one, p, sampling, seed + i) for i, p in enumerate(prompts)]
            return [f.result() for f in futures]

    def _one(self, prompt: str, sampling: Sampling, seed: int) -> Completion:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p if sampling.temperature > 0 else 1.0,
            "seed": seed,
            "n": 1,
        }
        if sampling.stop:
            body["stop"] = list(sampling.stop)[:4]  # the OpenAI API accepts at most 4
        data = self._post("/completions", body)
        try:
            choice, usage = data["choices"][0], data.get("usage") or {}
            text, _ = cut_at_stop(choice["text"], sampling.stop)  # servers honour only 4 stops
            reason = "length" if choice.get("finish_reason") == "length" else "stop"
            return Completion(
                text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)), reason
            )
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise BackendError(f"{self.base_url}/completions: unexpected response ({e!r}): {data}") from None

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt

        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=backoff_wait(self.backoff),
            retry=retry_if_exception_type(_Retryable),
            before_sleep=lambda state: self._log_retry(path, state),
        )
        try:
            return retrying(self._attempt, path, body)
        except RetryError as e:
            problem = e.last_attempt.exception().problem
            raise BackendError(
                f"{self.base_url}{path}: {problem} (gave up after {self.max_retries} retries)"
            ) from None

    def _attempt(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            response = self.client.post(path, json=body)
        except httpx.TransportError as e:
            raise _Retryable(f"{type(e).__name__}: {e}") from None
        if response.status_code < 400:
            return response.json()
        problem = f"HTTP {response.status_code}: {_message(response)}"
        if response.status_code not in RETRY_STATUS:
            raise BackendError(f"{self.base_url}{path}: {problem} (not retried: fix the request)")
        raise _Retryable(problem, _retry_after(response.headers.get("Retry-After")))

    def _log_retry(self, path: str, state) -> None:
        problem = state.outcome.exception().problem
        delay = state.next_action.sleep
        log.warning("%s%s: %s; retry %d in %.1fs", self.base_url, path, problem, state.attempt_number, delay)

    def _served_model(self) -> str:
        """The server's first model, when ``generation.openai_model`` is empty."""
        import httpx

        try:
            response = self.client.get("/models")
            response.raise_for_status()
            return response.json()["data"][0]["id"]
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as e:
            raise BackendError(
                f"{self.base_url}/models: cannot list the served models ({e}); set generation.openai_model"
            ) from None


def _message(response) -> str:
    try:
        error = response.json().get("error")
        return error.get("message", str(error)) if isinstance(error, dict) else str(error or response.text)
    except ValueError:
        return response.text[:300]


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110); None if absent/bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
