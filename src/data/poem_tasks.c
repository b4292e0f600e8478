/* Phrasings of the poem tasks and the general chat (simplified Chinese, written for jielong).
 * Template variables: {T} title, {A} author, {F} form name, {X} poem text, {L}/{M} a line and its mark,
 * {N}/{O} the next line and its mark, {B}/{C} the first two lines, {H} line count and {K} characters per
 * line in Chinese numerals. */
#include "data/poem_tasks.h"
#include "data/poem_text.h"
#include <stdlib.h>
#include <string.h>

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define PICK(rng, a) ((a)[jl_rng_below((rng), (uint64_t)COUNT(a))])

static const char *const write_prompts[] = {
    "以《{T}》为题，写一首{F}。",
    "请写一首{F}，题目是《{T}》。",
    "写一首题为《{T}》的{F}。",
    "帮我作一首{F}，诗题叫《{T}》。",
    "用{F}的体裁，写一首《{T}》。",
    "我想读一首{F}，题目就叫《{T}》，你能写一首吗？",
};

static const char *const author_prompts[] = {
    "《{T}》的作者是谁？这首诗开头是“{B}，{C}。”",
    "“{B}，{C}。”出自哪位诗人的《{T}》？",
    "谁写了《{T}》？它的第一句是“{B}”。",
    "请问以“{B}”开头的《{T}》是谁的作品？",
};
static const char *const author_answers[] = {
    "《{T}》的作者是{A}。",
    "这首诗是{A}写的。",
    "作者是{A}。",
};

static const char *const continue_prompts[] = {
    "请接下一句：{L}{M}",
    "“{L}”的下一句是什么？",
    "《{T}》中“{L}”的下一句是什么？",
    "{L}{M}下一句是？",
    "接龙：{L}{M}",
};
static const char *const continue_answers[] = {
    "{N}{O}",
    "下一句是“{N}”。",
    "“{L}”的下一句是“{N}”。",
};

static const char *const form_prompts[] = {
    "下面这首诗是什么体裁？\n{X}",
    "判断这首诗的体裁：\n{X}",
    "这首诗是五言绝句、七言绝句、五言律诗还是七言律诗？\n{X}",
    "{X}\n这是哪种诗体？",
};
static const char *const form_answers[] = {
    "这是一首{F}：全诗{H}句，每句{K}个字。",
    "{F}。",
    "这首诗是{F}，共{H}句，每句{K}字。",
};

static const char *const system_prompts[] = {
    "你是接龙（jielong），一个擅长中国古典诗词的助手。",
    "你是一位精通唐诗的诗人，请用简体中文回答。",
    "You are jielong, a helpful assistant that writes classical Chinese poems.",
};

/* General chat: each topic has several user phrasings and several answers. Greeting and identity have many
 * phrasings (a chat model is greeted and asked who it is in many words: 64 each, English ones among them, and
 * requests to introduce itself in several grammatical frames — 能…吗, 来个…吧, 麻烦…); the held-out probes below are not
 * among them, and jl_chat_topic_render never produces one (tests/test_data checks it). */
enum { CHAT_USERS = 64, CHAT_ANSWERS = 4 };
typedef struct {
    const char *users[CHAT_USERS];
    const char *answers[CHAT_ANSWERS];
} chat_topic;

static const chat_topic chat_topics[] = {
    {{"你好", "你好！", "您好", "嗨", "嗨！", "hello", "Hello", "Hi!", "hi", "你好啊", "早上好", "早上好！", "晚上好",
      "中午好", "哈喽", "哈喽！", "早安", "你好你好", "嘿，你好", "喂，你好", "在吗？", "有人吗？", "初次见面，你好",
      "好久不见！", "Hey!", "Good morning!", "Good evening!", "Hi there!", "你好，接龙", "嗨，接龙！", "您好，打扰了",
      "大家好啊", "你好哦", "问个好", "嗨喽", "早", "晚上好啊", "您好啊", "hello！", "你好~", "Hey, hello!",
      "Hello there!", "Hi, jielong!", "Hello, jielong!", "Morning!", "Good day!", "Greetings!", "Hiya!", "你好，朋友",
      "朋友你好", "嗨，朋友", "老师好", "很高兴认识你", "见到你真高兴", "幸会幸会", "你好，打个招呼", "哈喽，接龙",
      "嗨，好久没聊了", "您好，接龙", "嘿，在吗？", "在不在？", "早上好，接龙", "你好，又见面了", "Hello, anyone here?"},
     {"你好！我是接龙（jielong），一个会写古诗的小模型。想读一首诗，还是想接下一句？",
      "你好！有什么可以帮你的？我擅长五言、七言的绝句和律诗。", "您好！很高兴见到你。", "你好！很高兴见到你，想读哪首诗？"}},
    {{"你是谁？", "介绍一下你自己。", "你叫什么名字？", "Who are you?", "What is your name?", "你是什么？",
      "请做个自我介绍。", "你的名字是什么？", "嗨，你是谁？", "你是谁", "你叫什么？", "请问你叫什么名字？", "你是哪位？",
      "怎么称呼你？", "我该怎么称呼你？", "你是什么模型？", "你是机器人吗？", "你是人工智能吗？", "说说你自己吧。",
      "自我介绍一下吧。", "你到底是谁？", "你是谁呀？", "请介绍一下你自己", "What are you?", "Introduce yourself.",
      "Tell me about yourself.", "你的名字？", "你好，请介绍一下自己。", "你是哪个？", "你是做什么的？", "你是AI吗？",
      "你是什么助手？", "介绍下自己", "你叫什么", "您是谁？", "你是谁？介绍一下。", "Your name?", "你是谁啊",
      "请告诉我你是谁。", "你是哪里来的？", "你能做个自我介绍吗？", "来个自我介绍吧。", "跟我说说你是谁。",
      "介绍一下你自己好吗？", "麻烦介绍一下你自己。", "请先做个自我介绍。", "说一说你自己。", "讲讲你是谁吧",
      "你是谁呢？", "你是个啥？", "我在和谁说话？", "你是什么程序？", "你是真人吗？", "你的身份是什么？",
      "你从哪里来？", "Can you introduce yourself?", "What's your name?", "Who am I talking to?", "Are you a bot?",
      "Tell me who you are.", "Who is this?", "Do you have a name?", "Say something about yourself.",
      "你是哪一个？"},
     {"我是接龙（jielong），一个在 CPU 上从零训练的小型聊天模型，读过一万多首唐诗。",
      "我叫接龙（jielong）。我可以按题目和体裁写诗，说出一首诗的作者，接下一句，也能判断一首诗的体裁。",
      "I am jielong (接龙), a small chat model trained from scratch on a CPU. I write classical Chinese poems.",
      "我是接龙（jielong），一个会写古诗的小模型。"}},
    {{"你会做什么？", "你能帮我做什么？", "你有什么本领？", "What can you do?"},
     {"我可以：按题目写一首五言绝句、七言绝句、五言律诗或七言律诗；告诉你一首诗的作者；接下一句；判断一首诗的体裁。",
      "写诗、接句、认作者、辨体裁，都可以找我。比如你可以说：以《春晓》为题，写一首五言绝句。"}},
    {{"谁创造了你？", "你是怎么训练出来的？", "Who made you?"},
     {"我是 jielong 项目用 C 语言在 CPU 上训练出来的：分词器、预训练、指令微调和偏好对齐，每一步都在这个项目里完成。",
      "我由 jielong 项目训练：先读唐诗预训练，再学习对话，最后按诗体规则强化。"}},
    {{"谢谢", "谢谢你！", "多谢", "Thanks!"}, {"不客气！", "不用谢，随时找我写诗。", "很高兴能帮到你。"}},
    {{"再见", "拜拜", "Bye!"}, {"再见！欢迎再来读诗。", "再见，祝你今天愉快！"}},
    {{"什么是五言绝句？", "五绝是什么？"},
     {"五言绝句简称五绝：全诗四句，每句五个字，一般第二句和第四句押韵。"}},
    {{"什么是七言绝句？", "七绝是什么？"},
     {"七言绝句简称七绝：全诗四句，每句七个字，一般第二句和第四句押韵，首句也常入韵。"}},
    {{"什么是五言律诗？", "五律是什么？"},
     {"五言律诗简称五律：全诗八句，每句五个字，双句押韵，中间两联（颔联和颈联）要求对仗。"}},
    {{"什么是七言律诗？", "七律是什么？"},
     {"七言律诗简称七律：全诗八句，每句七个字，双句押韵，颔联和颈联要求对仗。"}},
    {{"绝句和律诗有什么区别？", "律诗和绝句怎么区分？"},
     {"绝句四句，律诗八句；律诗的颔联和颈联要求对仗，绝句不要求。每句五个字叫五言，七个字叫七言。"}},
    {{"今天天气怎么样？", "帮我写一段代码。", "讲个笑话吧。", "帮我翻译一段英文。"},
     {"这个我不太擅长。我是一个写古诗的小模型，可以为你写一首绝句或律诗，或者帮你接下一句。",
      "抱歉，这超出了我的本领。要不要我以此为题写一首诗？"}},
};

/* Held-out phrasings of the greeting and identity topics: only in the evaluation prompts, never in SFT, with the
 * phrases a right answer holds ("|"-separated) and a reference answer. */
static const char *const greeting_phrases = "你好|您好|很高兴|Hello|hello|Hi";
static const char *const identity_phrases = "接龙|jielong";
#define GREET(p) {p, greeting_phrases, "你好！有什么可以帮你的？"}
#define WHO(p) {p, identity_phrases, "我是接龙（jielong），一个会写古诗的小模型。"}
static const struct {
    const char *prompt, *expected, *answer;
} chat_probes[] = {
    GREET("你好呀"), GREET("嗨，你好！"), GREET("大家好"), GREET("下午好"), GREET("Hello!"), GREET("您好！"),
    WHO("你好，你是谁？"), WHO("请问你是谁？"), WHO("你是哪个模型？"), WHO("能介绍一下你自己吗？"), WHO("你叫啥？"),
    WHO("告诉我你的名字。"), WHO("你是什么人？"), WHO("Who are you, please?"),
    GREET("早晨好"), GREET("晚上好呀"), GREET("你好吗？"), GREET("嗨嗨"), GREET("哈啰"), GREET("你好哇"),
    GREET("您好呀"), GREET("喂，您好"), GREET("Hey there!"), GREET("Good afternoon!"), GREET("嘿！"),
    GREET("早上好呀"), GREET("各位好"), GREET("哈喽哈喽"), GREET("上午好"), GREET("你好，在吗？"),
    WHO("你是谁啊？"), WHO("你叫什么呀？"), WHO("您是哪位？"), WHO("可以告诉我你是谁吗？"), WHO("你有名字吗？"),
    WHO("简单介绍下你自己。"), WHO("你是哪家的模型？"), WHO("请问怎么称呼？"), WHO("What do I call you?"),
    WHO("May I know your name?"), WHO("你是聊天机器人吗？"), WHO("先介绍一下你自己吧"), WHO("你的名字叫什么？"),
    WHO("你是个什么模型？"),
};
#undef GREET
#undef WHO

int jl_chat_probe_count(void) { return COUNT(chat_probes); }

void jl_chat_probe(int k, const char **prompt, const char **expected, const char **answer) {
    *prompt = chat_probes[k % COUNT(chat_probes)].prompt;
    *expected = chat_probes[k % COUNT(chat_probes)].expected;
    *answer = chat_probes[k % COUNT(chat_probes)].answer;
}

const char *jl_system_prompt(jl_rng *rng) { return PICK(rng, system_prompts); }

int jl_chat_topic_count(void) { return COUNT(chat_topics); }

/* Greeting and identity (topics 0 and 1) are drawn CHAT_FIRST_WEIGHT times as often as each other topic: a chat
 * model is greeted and asked who it is in many words, and the held-out probes (jl_chat_probe) test exactly that. */
enum { CHAT_FIRST_WEIGHT = 6 };
int jl_chat_topic_pick(jl_rng *rng) {
    int heavy = 2, n = COUNT(chat_topics);
    int k = (int)jl_rng_below(rng, (uint64_t)(heavy * CHAT_FIRST_WEIGHT + n - heavy));
    return k < heavy * CHAT_FIRST_WEIGHT ? k / CHAT_FIRST_WEIGHT : k - heavy * CHAT_FIRST_WEIGHT + heavy;
}

static int filled(const char *const *items, int max) {
    int n = 0;
    while (n < max && items[n]) n++;
    return n;
}

void jl_chat_topic_render(int k, jl_rng *rng, jl_text *user, jl_text *assistant) {
    const chat_topic *t = &chat_topics[k % COUNT(chat_topics)];
    jl_text_puts(user, t->users[jl_rng_below(rng, (uint64_t)filled(t->users, COUNT(t->users)))]);
    jl_text_puts(assistant, t->answers[jl_rng_below(rng, (uint64_t)filled(t->answers, COUNT(t->answers)))]);
}

typedef struct {
    const char *vars[26];
    jl_text poem_text;
} task_vars;

static void set_var(task_vars *v, char key, const char *value) { v->vars[key - 'A'] = value; }

static void vars_init(task_vars *v, const jl_poem *p) {
    memset(v, 0, sizeof *v);
    set_var(v, 'T', p->title);
    set_var(v, 'A', p->author);
    set_var(v, 'F', jl_poem_form_name(p->form));
    set_var(v, 'B', p->lines[0]);
    set_var(v, 'C', p->lines[1]);
    set_var(v, 'H', p->n_lines == 4 ? "四" : "八");
    set_var(v, 'K', jl_poem_form_chars(p->form) == 5 ? "五" : "七");
    jl_render_lines(&v->poem_text, p->lines, p->n_lines);
    set_var(v, 'X', jl_text_str(&v->poem_text));
}

void jl_task_write_prompt(const jl_poem *p, jl_rng *rng, jl_text *user) {
    task_vars v;
    vars_init(&v, p);
    jl_text_fill(user, PICK(rng, write_prompts), v.vars);
    jl_text_free(&v.poem_text);
}

void jl_task_render(const jl_poem *p, jl_poem_task task, jl_rng *rng, jl_text *user, jl_text *assistant,
                    jl_text *expected) {
    task_vars v;
    vars_init(&v, p);
    int line = (int)jl_rng_below(rng, (uint64_t)(p->n_lines - 1)); /* for "continue": any line but the last */
    set_var(&v, 'L', p->lines[line]);
    set_var(&v, 'M', line % 2 == 0 ? "，" : "。");
    set_var(&v, 'N', p->lines[line + 1]);
    set_var(&v, 'O', line % 2 == 0 ? "。" : "，");
    switch (task) {
    case JL_TASK_WRITE:
        jl_text_fill(user, PICK(rng, write_prompts), v.vars);
        jl_render_heading(assistant, p);
        jl_text_fill(assistant, "\n{X}", v.vars);
        jl_text_fill(expected, "{X}", v.vars);
        break;
    case JL_TASK_AUTHOR:
        jl_text_fill(user, PICK(rng, author_prompts), v.vars);
        jl_text_fill(assistant, PICK(rng, author_answers), v.vars);
        jl_text_fill(expected, "{A}", v.vars);
        break;
    case JL_TASK_CONTINUE:
        jl_text_fill(user, PICK(rng, continue_prompts), v.vars);
        jl_text_fill(assistant, PICK(rng, continue_answers), v.vars);
        jl_text_fill(expected, "{N}", v.vars);
        break;
    default:
        jl_text_fill(user, PICK(rng, form_prompts), v.vars);
        jl_text_fill(assistant, PICK(rng, form_answers), v.vars);
        jl_text_puts(expected, jl_poem_form_id(p->form));
        break;
    }
    jl_text_free(&v.poem_text);
}
