"""Reading rendered pages in tests: the elements by id and their text (`Page`), fetched as a signed-in user (`get`)."""
import re
from html.parser import HTMLParser


class Page(HTMLParser):
    """The elements of a rendered page by id, and the text inside each element with an id (enough to assert on)."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.html = html
        self.elements = []  # (tag, attrs)
        self.by_id = {}
        self._open = []  # [id or None] per open element
        self.text_by_id = {}
        self.feed(html)

    VOID = {"input", "br", "img", "meta", "link", "hr", "source", "area", "col", "wbr"}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if "id" in attrs:
            self.by_id[attrs["id"]] = (tag, attrs)
            self.text_by_id.setdefault(attrs["id"], "")
        if tag not in self.VOID:
            self._open.append(attrs.get("id"))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self._open:
            self._open.pop()

    def handle_data(self, data):
        for open_id in self._open:
            if open_id is not None:
                self.text_by_id[open_id] += data

    def text(self, element_id):
        return re.sub(r"\s+", " ", self.text_by_id.get(element_id, "")).strip()

    def attrs(self, element_id):
        return self.by_id[element_id][1]

    def all(self, tag, **match):
        return [a for t, a in self.elements if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in match.items())]


def get(client, user, url, status=200):
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == status, response.content[:2000]
    return Page(response.content.decode())


def page_as(client, email, url):
    """(response, unescaped HTML) of `url` fetched signed in as the user with `email` (signed out first)."""
    from html import unescape

    from django.contrib.auth import get_user_model

    client.logout()
    client.force_login(get_user_model().objects.get(email=email))
    response = client.get(url)
    return response, unescape(response.content.decode())


def html_section(text, heading):
    """The HTML from the element with id `heading` to the next <section> (or the end)."""
    start = text.index(f'id="{heading}"')
    end = text.find("<section", start)
    return text[start:end if end != -1 else None]
