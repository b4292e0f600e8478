/* The chat page, compiled in from src/serve/page.html (the Makefile makes this object depend on it). */
#include "serve/serve.h"

__asm__(".section .rodata\n"
        ".global serve_page_html\n"
        ".type serve_page_html, @object\n"
        ".balign 16\n"
        "serve_page_html:\n"
        ".incbin \"src/serve/page.html\"\n"
        "serve_page_html_end:\n"
        ".byte 0\n"
        ".global serve_page_html_len\n"
        ".type serve_page_html_len, @object\n"
        ".balign 8\n"
        "serve_page_html_len:\n"
        ".quad serve_page_html_end - serve_page_html\n"
        ".previous\n");
