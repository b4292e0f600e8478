/* Synthetic mixed-language text (see synth.h). Paragraphs are drawn from small hand-written inventories. */
#include "tokenizer/synth.h"
#include "core/rng.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1 << 16;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = 1; return; }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void printf_(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(sbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

#define PICK(r, arr) (arr[jl_rng_below(r, sizeof(arr) / sizeof(arr[0]))])

static const char *const english[] = {
    "the", "of", "and", "to", "in", "is", "that", "it", "was", "for", "on", "are", "as", "with", "his", "they",
    "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but", "not", "what", "all", "were",
    "we", "when", "your", "can", "said", "there", "use", "an", "each", "which", "she", "do", "how", "their", "if",
    "will", "up", "other", "about", "out", "many", "then", "them", "these", "so", "some", "her", "would", "make",
    "like", "him", "into", "time", "has", "look", "two", "more", "write", "go", "see", "number", "no", "way",
    "could", "people", "my", "than", "first", "water", "been", "call", "who", "oil", "its", "now", "find", "long",
    "down", "day", "did", "get", "come", "made", "may", "part", "tokenizer", "gradient", "transformer", "model",
    "training", "attention", "embedding", "checkpoint", "poem", "mountain", "river", "moon", "autumn", "wind",
    "spring", "willow", "lantern", "temple", "journey", "friend", "letter", "evening", "harbour", "colour",
    "unbelievable", "internationalization", "electroencephalogram", "rhythm", "queue", "psychology", "Zürich",
};
static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'Re", "'T"};
static const char *const names[] = {"Alice", "Bob", "Li Bai", "Du Fu", "Wang Wei", "GPT", "OpenAI", "Jielong",
                                    "NASA", "McDonald", "O'Brien", "iPhone", "JSON", "UTF-8", "x86_64"};
/* Common characters, three bytes each in UTF-8. */
static const char chinese[] = "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后"
                              "能对着事其里所去行过家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还"
                              "分此心前面又定见只主没公从山水风月花春秋江河云雨夜明白高长远望思乡故人诗酒歌鸟飞落红青"
                              "黄金玉门关城楼台草木松竹梅兰舟客归来寒暖晓晚声色光影孤独千万里";
static const char *const zh_punct[] = {"，", "。", "！", "？", "、", "；", "：", "「", "」", "《", "》", "——", "……"};
static const char *const unicode_bits[] = {
    "café", "naïve", "résumé", "Ångström", "façade", "jalapeño", "straße", "ΑΒΓ αβγ", "Σωκράτης", "Москва",
    "привет мир", "こんにちは", "カタカナ", "ひらがな", "한국어", "😀", "🚀🔥", "👍🏽", "e\xCC\x81", "n\xCC\x83o",
    "\xC2\xA0", "\xE3\x80\x80", "１２３", "ＡＢＣ", "①②③", "½ ¾", "€100", "£5", "¥300", "→ ⇒ ≠ ≤ ∑ ∫", "©®™",
    "\xE2\x80\x8B", "\t", "¿Qué?", "¡Sí!", "Ωmega", "ǅ", "ﬁ", "Ⅻ", "٣٤٥", "עברית", "العربية", "हिन्दी", "ไทย",
};
static const char *const code_lines[] = {
    "for (int i = 0; i < n; i++) {", "if (x == NULL) return -1;", "}", "{", "return st;", "x += y * 2;",
    "static int count = 0;", "#include <stdio.h>", "def main(argv):", "    return 0", "import numpy as np",
    "print(f\"loss={loss:.4f}\")", "const y = await fetch(url);", "let s = arr.map((a) => a * 2);",
    "// TODO: handle the empty case", "/* multi-line\n * comment */", "x = [1, 2, 3]  # list", "assert a != b",
    "while True:", "    pass", "elif n % 2 == 0:", "self.weights[i][j] -= lr * grad", "ptr->next = NULL;",
    "printf(\"%d\\n\", value);", "if err != nil {", "fmt.Println(\"hi\")", "SELECT * FROM t WHERE id = 42;",
    "<div class=\"row\">", "</div>", "a && b || !c", "i <<= 3; j >>= 1;", "std::vector<int> v{1,2,3};",
    "fn add(a: i32, b: i32) -> i32 { a + b }", "$ make test -j2", "git commit -m \"fix: off-by-one\"",
};

static void english_paragraph(sbuf *b, jl_rng *r) {
    int sentences = 1 + (int)jl_rng_below(r, 5);
    for (int s = 0; s < sentences; s++) {
        int words = 3 + (int)jl_rng_below(r, 14);
        for (int w = 0; w < words; w++) {
            if (w) puts_(b, jl_rng_below(r, 40) ? " " : "  ");
            uint64_t kind = jl_rng_below(r, 100);
            const char *word = PICK(r, english);
            if (kind < 6) printf_(b, "%llu", (unsigned long long)jl_rng_below(r, 10000000));
            else if (kind < 8) printf_(b, "%llu.%02llu", (unsigned long long)jl_rng_below(r, 1000),
                                       (unsigned long long)jl_rng_below(r, 100));
            else if (kind < 12) puts_(b, PICK(r, names));
            else if (kind < 14) puts_(b, PICK(r, unicode_bits));
            else if (kind < 17) {
                for (const char *c = word; *c; c++) printf_(b, "%c", *c >= 'a' && *c <= 'z' ? *c - 32 : *c);
            } else if (w == 0) printf_(b, "%c%s", word[0] >= 'a' && word[0] <= 'z' ? word[0] - 32 : word[0], word + 1);
            else puts_(b, word);
            if (jl_rng_below(r, 12) == 0) puts_(b, PICK(r, contractions));
            if (jl_rng_below(r, 15) == 0) puts_(b, jl_rng_below(r, 2) ? "," : ";");
            if (jl_rng_below(r, 40) == 0) puts_(b, jl_rng_below(r, 2) ? " (see above)" : " \"quoted\"");
        }
        puts_(b, jl_rng_below(r, 6) ? "." : jl_rng_below(r, 2) ? "?" : "!");
        if (s + 1 < sentences) puts_(b, jl_rng_below(r, 8) ? " " : "\n");
    }
}

static void chinese_paragraph(sbuf *b, jl_rng *r) {
    size_t n_chars = (sizeof chinese - 1) / 3;
    int clauses = 2 + (int)jl_rng_below(r, 8);
    for (int c = 0; c < clauses; c++) {
        int len = jl_rng_below(r, 3) ? (jl_rng_below(r, 2) ? 5 : 7) : 2 + (int)jl_rng_below(r, 20);
        for (int k = 0; k < len; k++) put(b, chinese + 3 * jl_rng_below(r, n_chars), 3);
        uint64_t extra = jl_rng_below(r, 30);
        if (extra == 0) printf_(b, "%llu年", 600 + (unsigned long long)jl_rng_below(r, 1500));
        else if (extra == 1) printf_(b, " %s ", PICK(r, english));
        else if (extra == 2) puts_(b, PICK(r, names));
        puts_(b, c + 1 < clauses ? PICK(r, zh_punct) : (jl_rng_below(r, 4) ? "。" : "！"));
        if (jl_rng_below(r, 6) == 0) puts_(b, "\n");
    }
}

static void code_paragraph(sbuf *b, jl_rng *r) {
    int lines = 2 + (int)jl_rng_below(r, 12);
    const char *eol = jl_rng_below(r, 10) ? "\n" : "\r\n";
    for (int l = 0; l < lines; l++) {
        int depth = (int)jl_rng_below(r, 4);
        for (int d = 0; d < depth; d++) puts_(b, jl_rng_below(r, 5) ? "    " : "\t");
        puts_(b, PICK(r, code_lines));
        if (jl_rng_below(r, 15) == 0) puts_(b, "   ");
        if (jl_rng_below(r, 10) == 0) printf_(b, " // %s %s", PICK(r, english), PICK(r, english));
        puts_(b, eol);
        if (jl_rng_below(r, 12) == 0) puts_(b, eol);
    }
}

static void misc_paragraph(sbuf *b, jl_rng *r) {
    int items = 3 + (int)jl_rng_below(r, 10);
    for (int i = 0; i < items; i++) {
        puts_(b, PICK(r, unicode_bits));
        static const char *const seps[] = {" ", "  ", "\t", ", ", "...", " - ", "\n", " \n", "'s ", "/", "|"};
        puts_(b, PICK(r, seps));
    }
}

jl_status jl_synth_text(uint64_t seed, size_t bytes, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    sbuf b = {0};
    jl_rng r;
    jl_rng_seed(&r, seed);
    puts_(&b, "");
    while (b.n < bytes && !b.oom) {
        uint64_t kind = jl_rng_below(&r, 100);
        if (kind < 40) english_paragraph(&b, &r);
        else if (kind < 70) chinese_paragraph(&b, &r);
        else if (kind < 92) code_paragraph(&b, &r);
        else misc_paragraph(&b, &r);
        static const char *const breaks[] = {"\n\n", "\n\n", "\n\n", "\n", "\n\n\n", " \n\n", "\n  \n"};
        puts_(&b, PICK(&r, breaks));
    }
    if (b.oom) {
        free(b.s);
        return jl_fail(JL_ERR_NOMEM, "out of memory (synthetic text of %zu bytes)", bytes);
    }
    *text = b.s;
    *len = b.n;
    return JL_OK;
}

/* ---- more scripts and the awkward corners of Unicode, for jl_synth_mixed ---- */
static const char *const japanese[] = {
    "今日は", "いい天気", "ですね", "東京", "大阪", "カタカナ", "ひらがな", "漢字", "コンピューター", "トークナイザー",
    "日本語の文章", "を", "に", "が", "は", "で", "も", "ありがとう", "ございます", "すみません", "ラーメン", "桜", "富士山",
    "ｶﾀｶﾅ", "ﾃｽﾄ",
};
static const char *const korean[] = {
    "안녕하세요", "한국어", "서울", "감사합니다", "토크나이저", "컴퓨터", "사랑", "학교", "대한민국", "오늘", "날씨",
    "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB", /* 한 as conjoining jamo (NFC composes it) */
    "\xE1\x84\x80\xE1\x85\xB3\xE1\x86\xAF",
};
static const char *const emoji[] = {
    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7\xE2\x80\x8D\xF0\x9F\x91\xA6", /* family (ZWJ) */
    "\xF0\x9F\x8F\xB3\xEF\xB8\x8F\xE2\x80\x8D\xF0\x9F\x8C\x88",                                         /* rainbow flag */
    "\xF0\x9F\x91\xA9\xF0\x9F\x8F\xBD\xE2\x80\x8D\xF0\x9F\x92\xBB",                                     /* technologist */
    "\xF0\x9F\x87\xA8\xF0\x9F\x87\xB3", "\xF0\x9F\x87\xAF\xF0\x9F\x87\xB5",                             /* flags */
    "1\xEF\xB8\x8F\xE2\x83\xA3", "\xE2\x9D\xA4\xEF\xB8\x8F", "\xF0\x9F\x98\x82", "\xF0\x9F\xA4\x96", "\xE2\x9C\x85",
    "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBF", "\xF0\x9F\xA7\x91\xE2\x80\x8D\xF0\x9F\x94\xAC",
};
static const char *const accents[] = {
    "e\xCC\x81", "a\xCC\x88\xCC\x84", "o\xCC\x82\xCC\x83", "\xC3\xA9", "\xE1\xBB\x87", "Vi\xE1\xBB\x87t Nam",
    "Vie\xCC\xA3\xCC\x82t", "\xC3\x85", "A\xCC\x8A", "\xE2\x84\xAB", "\xEF\xAC\x81", "\xE2\x91\xA0", "\xC2\xB2",
    "\xE1\xB8\x8B\xCC\xA3", "q\xCC\xA3\xCC\x87", "\xCE\x90", "\xE3\x82\xAC", "\xE3\x82\xAB\xE3\x82\x99",
};
static const char *const spaces[] = {" ", "  ", "   ", "        ", "\t", "\t\t", "\r\n", "\r\n\r\n", "\r", "\n \n",
                                     " \t ", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\x83", "\n\n\n", "\n\n\n\n\n"};
static const char *const added_like[] = {"<|endoftext|>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>",
                                         "<start_of_turn>", "<end_of_turn>", "<|begin_of_text|>", "<bos>", "<eos>",
                                         "<|user|>", "<|end|>", "<pad>", "<mask>", "<|fim_prefix|>"};
static const char *const invalid[] = {"\xFF", "\xFE\xFE", "\x80", "\xBF\x80", "\xC0\x80", "\xC3", "\xE4\xBD",
                                      "\xF0\x9F\x98", "\xED\xA0\x80", "\xF5\x80\x80\x80", "\xE0\x80\xAF", "\xC2",
                                      "\xF4\x90\x80\x80"};

static void world_paragraph(sbuf *b, jl_rng *r, int flags) {
    int items = 4 + (int)jl_rng_below(r, 20);
    for (int i = 0; i < items; i++) {
        uint64_t k = jl_rng_below(r, 100);
        if (k < 22) puts_(b, PICK(r, japanese));
        else if (k < 38) puts_(b, PICK(r, korean));
        else if (k < 48) puts_(b, PICK(r, emoji));
        else if (k < 58) puts_(b, PICK(r, accents));
        else if (k < 66 && (flags & JL_SYNTH_ADDED)) puts_(b, PICK(r, added_like));
        else if (k < 74) printf_(b, "%llu", (unsigned long long)jl_rng_u64(r) >> jl_rng_below(r, 60));
        else if (k < 80) puts_(b, PICK(r, english));
        else if (k < 84 && (flags & JL_SYNTH_INVALID)) puts_(b, PICK(r, invalid));
        else puts_(b, PICK(r, spaces));
        if (jl_rng_below(r, 3) == 0) puts_(b, PICK(r, spaces));
    }
}

jl_status jl_synth_mixed(uint64_t seed, size_t bytes, int flags, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    sbuf b = {0};
    jl_rng r;
    jl_rng_seed(&r, seed);
    puts_(&b, "");
    while (b.n < bytes && !b.oom) {
        uint64_t kind = jl_rng_below(&r, 100);
        if (kind < 25) english_paragraph(&b, &r);
        else if (kind < 45) chinese_paragraph(&b, &r);
        else if (kind < 60) code_paragraph(&b, &r);
        else if (kind < 68) misc_paragraph(&b, &r);
        else world_paragraph(&b, &r, flags);
        static const char *const breaks[] = {"\n\n", "\n", "\r\n", "\n\n\n", " \n\n", "\n  \n", "\t\n"};
        puts_(&b, PICK(&r, breaks));
    }
    if (b.oom) {
        free(b.s);
        return jl_fail(JL_ERR_NOMEM, "out of memory (synthetic text of %zu bytes)", bytes);
    }
    *text = b.s;
    *len = b.n;
    return JL_OK;
}
