import random

from shared.markdown import render


def test_markdown_subset_renders_emphasis_lists_code_and_links():
    html = render("**bold** _it_ ~~gone~~ [site](https://example.com)\n\n1. one\n2. two\n\n```py\nx<1\n```")
    assert "<strong>bold</strong>" in html and "<em>it</em>" in html and "<s>gone</s>" in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">site</a>' in html
    assert "<ol>" in html and '<code class="language-py">x&lt;1' in html


def test_raw_html_and_script_urls_never_survive():
    html = render('<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))')
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;" in html  # shown as text, not dropped silently


def test_images_are_not_embedded():
    assert "<img" not in render("![tracker](https://evil.example/pixel.png)")


def test_the_plain_text_shortcut_renders_exactly_what_the_parser_does():
    """render() skips the parser for one line of words: over many random texts built from the characters
    Markdown cares about, every text the shortcut takes renders as the parser renders it."""
    from shared.markdown import _PLAIN, _parser, sanitize

    rng = random.Random(20261126)
    pieces = ["word", "Ünïcode", "日本", "x2", "42", " ", "  ", ".", ",", ";", ":", "'", "?", "!", "(", ")", "/",
              "%", "@ana", "+", "=", "-", "_", "*", "`", "~~", "#", ">", "<", "&", "&amp;", '"', "[", "]",
              "\\", "\n", "\t", "1.", "2)", "http://x.y", "    ", "²", "ǅ"]
    shortcut = 0
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        if _PLAIN.fullmatch(text) and not text.endswith(" "):
            shortcut += 1
            assert render(text) == sanitize(_parser().render(text)), text
    assert shortcut > 500  # the comparison covered the shortcut, not only texts it refuses
    assert render("Lunch at 12:30?") == "<p>Lunch at 12:30?</p>\n"
    assert render("- not a plain line") == "<ul>\n<li>not a plain line</li>\n</ul>\n"
