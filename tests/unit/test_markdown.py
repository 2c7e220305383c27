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
