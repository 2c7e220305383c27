"""A Markdown subset rendered to sanitized HTML: what posts, comments and messages show.

markdown-it-py parses CommonMark with raw HTML and images switched off (images are attachments);
nh3 (ammonia) then keeps only the tags below, so whatever the parser lets through, the HTML that
reaches a client cannot run script or load anything. Callers store the raw text as written and this
HTML next to it.
"""

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

TAGS = frozenset({"p", "br", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a",
                  "h1", "h2", "h3", "h4", "h5", "h6", "hr"})
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "code": {"class"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        "strikethrough").disable("image")


def sanitize(html: str) -> str:
    """HTML reduced to the allowed tags, attributes and link schemes (links get rel=noopener…)."""
    return nh3.clean(html, tags=set(TAGS), attributes={k: set(v) for k, v in ATTRIBUTES.items()},
                     url_schemes=set(URL_SCHEMES), link_rel=LINK_REL)


# One line of words and harmless punctuation, starting with a letter: no Markdown construct can start or
# happen in it (no list/heading/quote marker, no emphasis, code, link, entity or HTML character, no break),
# so the parser would only wrap it in a paragraph. Most chat messages are this; the pure-Python parser was
# the largest part of a message send's CPU. tests/unit/test_markdown.py checks the shortcut against the parser.
_PLAIN = re.compile(r"[^\W\d_](?:[^\W_]|[ ,.;:'?!()/%@+=-])*")


def render(text: str) -> str:
    """Markdown (the subset) to sanitized HTML."""
    if _PLAIN.fullmatch(text) and not text.endswith(" "):
        return sanitize(f"<p>{text}</p>\n")
    return sanitize(_parser().render(text))


# A mention is @handle not preceded by a word character (so emails are not mentions); the same syntax
# in posts, comments and messages.
MENTION = re.compile(r"(?<![\w@])@([a-z0-9][a-z0-9._-]{0,63})", re.IGNORECASE)


def parse_mentions(text: str) -> set[str]:
    """The handles @mentioned in `text`, lower-cased."""
    return {m.rstrip("._-").lower() for m in MENTION.findall(text)} if "@" in text else set()
