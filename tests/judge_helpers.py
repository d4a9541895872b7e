"""Test helpers for the judge: an OpenAI-compatible chat server on loopback and a tiny chat model."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# A reply is a str (the message content, HTTP 200), or (status, content-or-error, headers).
Reply = str | tuple[int, str, dict[str, str]]


def completion_body(content: str, model: str, prompt_tokens: int = 10, completion_tokens: int = 5) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


class ChatServer:
    """POST /v1/chat/completions on 127.0.0.1. ``reply(body, n)`` decides each answer
    (``n`` = 0-based request number); every request body is kept in ``requests``; ``max_in_flight``
    is the largest number of requests handled at the same time. ``gate`` (optional) is called
    inside the handler while the request counts as in flight."""

    def __init__(self, reply: Callable[[dict, int], Reply], gate: Callable[[], None] | None = None) -> None:
        self.reply, self.gate = reply, gate
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                server.handle(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def count(self) -> int:
        return len(self.requests)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        if h.path != "/v1/chat/completions":
            return self._send(h, 404, {"error": {"message": "not found"}}, {})
        with self.lock:
            n = len(self.requests)
            self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                self.gate()
            r = self.reply(body, n)
        finally:
            with self.lock:
                self.in_flight -= 1
        status, content, headers = (200, r, {}) if isinstance(r, str) else r
        if status == 200:
            return self._send(h, 200, completion_body(content, body["model"]), headers)
        return self._send(h, status, {"error": {"message": content, "type": "test"}}, headers)

    @staticmethod
    def _send(h, status: int, obj: Any, headers: dict[str, str]) -> None:
        data = json.dumps(obj).encode()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def user_text(body: dict) -> str:
    """The first user message of a request (the rendered rubric)."""
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def tiny_chat_model(path: Path | None = None, seed: int = 0):
    """A 2-layer random-init Llama with a byte-level BPE tokenizer that has a ChatML chat template.

    Saved with ``save_pretrained`` to ``path`` when given. Returns (model, tokenizer).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from unlearnkit.judge.rubrics import RUBRICS, SYSTEM
    from unlearnkit.models.tokenizer import train_tokenizer

    corpus = [SYSTEM, *(r.template for r in RUBRICS.values()), "<|im_start|> <|im_end|> assistant user system"] * 3
    tok = train_tokenizer(corpus, vocab_size=400)
    tok.chat_template = CHATML
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    if path is not None:
        model.save_pretrained(path, safe_serialization=True)
        tok.save_pretrained(path)
    return model, tok
