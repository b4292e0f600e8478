#!/usr/bin/env bash
# Seed corpora for the fuzz harnesses: valid files made by jielong itself (a tiny model in every format, its
# tokenizer, shards, datasets) and the bad-input catalogue's crafted files (tests/test_badinput.c makes them
# with JL_FIXTURES_ONLY=small: its model files at width 8, ~10x fewer bytes than the catalogue's, for faster
# executions through the same loader code), copied into FUZZ/corpus/NAME. Harnesses whose first input byte is a selector get
# each seed once per selector value. usage: fuzz/seeds.sh REL_BUILD FUZZ_BUILD
set -eu
cd "$(dirname "$0")/.."
rel=${1:-build}; out=${2:-build/fuzz}
work="$out/seedwork"; rm -rf "$work"; mkdir -p "$work"
JL_FIXTURES_ONLY=small JL_BIN="$PWD/$rel/jielong" JL_TMP="$PWD/$work" JL_ROOT="$PWD" "$rel/tests/test_badinput" \
  > "$work/log" 2>&1 || { tail -20 "$work/log"; exit 1; }
fx="$work/fx"
seed() { # NAME FILE [PREFIX_BYTES...]: the file as a seed, once per prefix byte (octal) if given
  local name=$1 file=$2; shift 2
  [ -f "$file" ] || return 0
  mkdir -p "$out/corpus/$name"
  local base; base=$(echo "$file" | sed "s|$fx/||; s|/|_|g")
  if [ $# -eq 0 ]; then cp "$file" "$out/corpus/$name/seed_$base"; return; fi
  for p in "$@"; do { printf "\\$p"; cat "$file"; } > "$out/corpus/$name/seed_${p}_$base"; done
}
for f in "$fx"/*.st "$fx"/hf/model.safetensors "$fx"/hf_*/model*.safetensors; do seed fuzz_safetensors "$f"; done
for f in "$fx"/*.gguf; do seed fuzz_gguf "$f" 000 001; done
for f in "$fx"/tok*.json; do seed fuzz_tokenizer_json "$f"; done
for f in "$fx"/hf/config.json "$fx"/hf_*/config.json; do seed fuzz_hf_config "$f"; done
for f in "$fx"/g2.bin "$fx"/llmc_*.bin; do seed fuzz_llmc "$f"; done
for f in "$fx"/shards/*.bin "$fx"/badmagic.bin "$fx"/oov.bin "$fx"/cut.bin; do seed fuzz_shard "$f"; done
for f in "$fx"/sft*.jsonl "$fx"/nul.jsonl "$fx"/surrogate.jsonl "$fx"/overlong.jsonl "$fx"/role.jsonl; do
  seed fuzz_jsonl "$f" 000 004; done
for f in "$fx"/norej.jsonl "$fx"/prefnul.jsonl; do seed fuzz_jsonl "$f" 001 005; done
for f in "$fx"/rl*.jsonl; do seed fuzz_jsonl "$f" 002 006; done
head -c 60000 data/poems.jsonl > "$work/poems.jsonl"; seed fuzz_jsonl "$work/poems.jsonl" 003 007
# text for the encoder: the corpus, poems, and the catalogue's odd bytes, under every pattern (and specials)
head -c 4000 data/poems.jsonl > "$work/poems.txt"
printf 'a<|end|>b<|bos|>\n\n  \t x\r\n\xef\xbb\xbf\xed\xa0\x80\xc0\xaf\x00\xff' > "$work/odd.txt"
for f in "$fx"/corpus.txt "$work/poems.txt" "$work/odd.txt"; do
  seed fuzz_encode "$f" 000 001 002 003 004 005 006 007; done
# vocabulary imports: a tiktoken rank file of the 256 bytes; a small encoder.json + vocab.bpe (NUL between)
for i in $(seq 0 255); do printf "$(printf '\\%03o' "$i")" | base64 | tr -d '\n'; echo " $i"; done > "$work/bytes.tiktoken"
seed fuzz_vocab_import "$work/bytes.tiktoken" 001
printf '{"a":0,"b":1,"ab":2,"\\u0120":3}\000#version: 0.2\na b\n' > "$work/gpt2.pair"
seed fuzz_vocab_import "$work/gpt2.pair" 000
seed fuzz_vocab_import "$fx/bad.tiktoken" 001
# server request bodies (first byte: 0 chat, 1 completions)
printf '{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"stop":["\\n"],"n":2}' > "$work/chat.json"
printf '{"model":"m","prompt":["the cat","a dog"],"max_tokens":3,"logprobs":2,"echo":true,"seed":3}' > "$work/completion.json"
printf '{"model":"m","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get","parameters":{"type":"object"}}}],"tool_choice":"required"}' > "$work/tools.json"
seed fuzz_serve_request "$work/chat.json" 000; seed fuzz_serve_request "$work/tools.json" 000
seed fuzz_serve_request "$work/completion.json" 001
# raw HTTP requests for the live daemon (fuzz_serve_http): each route, a body by length and chunked, pipelined
# requests, a stream, a cut-short body, a bad key
chat=$(cat "$work/chat.json"); chat_len=${#chat}; chat=${chat//\\/\\\\}; body='{"prompt":"hi","max_tokens":2}'
http() { mkdir -p "$out/corpus/fuzz_serve_http"; printf '%b' "$2" > "$out/corpus/fuzz_serve_http/seed_$1"; }
for r in / /health /metrics /v1/models; do http "get${r//\//_}" "GET $r HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"; done
http completion "POST /v1/completions HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: ${#body}\r\n\r\n$body"
http chat "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: $chat_len\r\n\r\n$chat"
http chunked "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n$(printf '%x' ${#body})\r\n$body\r\n0\r\n\r\n"
http tokenize "POST /tokenize HTTP/1.0\r\nContent-Length: 12\r\n\r\n{\"text\":\"a\"}"
http detokenize "POST /detokenize HTTP/1.1\r\nContent-Length: 16\r\n\r\n{\"tokens\":[1,2]}"
http pipelined "GET /health HTTP/1.1\r\n\r\nGET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n"
http cut "POST /v1/completions HTTP/1.1\r\nContent-Length: 400\r\n\r\n{\"prompt\":"
http key "GET /v1/models HTTP/1.1\r\nAuthorization: Bearer wrong\r\nExpect: 100-continue\r\n\r\n"
http method "DELETE /v1/chat/completions HTTP/1.1\r\n\r\n"
# chat templates: ours (as HF exports it) and a few constructs
printf '%s' "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}<|system|>{{ m['content'] }}<|end|>{% elif m['role'] == 'user' %}<|user|>{{ m['content'] | trim }}<|end|>{% else %}<|assistant|>{{ m.content }}<|end|>{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}" > "$work/ours.jinja"
printf '%s' "{%- set ns = namespace(n=0) -%}{%- for m in messages if m.role != 'system' -%}{%- set ns.n = ns.n + 1 -%}{{ loop.index }}:{{ m.content[:3] ~ '|' }}{%- endfor -%}{{ ns.n }}{{ tools | tojson }}{% macro f(x, y=2) %}{{ x * y }}{% endmacro %}{{ f(3) }}{{ range(3) | join(',') }}" > "$work/ns.jinja"
printf '%s' "{% if messages|length > 9 %}{{ raise_exception('too many') }}{% endif %}{{ messages[-1]['content'].split(' ') | reverse | list }}" > "$work/raise.jinja"
for f in "$work"/*.jinja; do seed fuzz_template "$f"; done
n=$(find "$out/corpus" -type f | wc -l)
echo "fuzz seeds: $n files in $out/corpus"
