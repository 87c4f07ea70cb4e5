"""Browser: every page of the starter portal, as a developer and as a manager, has text with enough contrast
(WCAG AA: 4.5:1, 3:1 for large text) and a label for every form control, on a laptop and on a phone.

The contrast check is ours (a few lines of script below), not a copied audit library: for each visible text
node it compares the text colour with the first opaque background behind it.
"""
import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["/", "/catalog/", "/catalog/runningService/", "/catalog/runningService/CartService-production/",
         "/actions/", "/actions/create_dev_env/run", "/actions/lock_service/run?entity=CartService-production",
         "/runs/", "/environments/", "/locks/", "/deployments/", "/approvals/"]

FINDINGS = """() => {
  const channels = (css) => (css.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const linear = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
  };
  const background = (element) => {
    for (let node = element; node && node.nodeType === 1; node = node.parentElement) {
      const rgba = channels(getComputedStyle(node).backgroundColor);
      if (rgba.length === 3 || (rgba.length === 4 && rgba[3] > 0.9)) return rgba.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const findings = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    const element = text.parentElement;
    if (!text.textContent.trim() || !element || !element.getClientRects().length) continue;
    const style = getComputedStyle(element);
    if (style.visibility === "hidden" || element.closest("[aria-hidden=true], .sr-only, .skip-link, option")) continue;
    const [fg, bg] = [luminance(channels(style.color)), luminance(background(element))];
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) findings.push(`contrast ${ratio.toFixed(2)} < ${needed}: "${text.textContent.trim().slice(0, 40)}" (${style.color} on ${background(element)})`);
  }
  for (const control of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    if (!control.labels.length && !control.getAttribute("aria-label") && !control.getAttribute("aria-labelledby"))
      findings.push(`no label: <${control.tagName.toLowerCase()} name="${control.name}">`);
  }
  return findings;
}"""


@pytest.mark.parametrize("width", [1366, 390])
def test_pages_have_contrast_and_labels(live_server, browser, sign_in, screenshot, starter_portal, width):
    UserFactory(email="developer@example.com", teams=["Checkout"])
    check = browser.new_page()  # the check itself finds what it should
    check.set_content('<p style="color:#bbb">faint</p><p style="color:#444">dark</p><input name="q"><label>ok <input name="ok"></label>')
    assert check.evaluate(FINDINGS) == ['contrast 1.92 < 4.5: "faint" (rgb(187, 187, 187) on 255,255,255)', 'no label: <input name="q">']
    check.close()
    findings = {}
    for email in ("developer@example.com", "manager@example.com"):
        context = browser.new_context(viewport={"width": width, "height": 860})
        try:
            page = context.new_page()
            sign_in(page, email)
            for path in PAGES:
                response = page.goto(f"{live_server.url}{path}")
                assert response.status == 200, (email, path, response.status)
                for finding in page.evaluate(FINDINGS):
                    findings.setdefault(f"{email} {path}", []).append(finding)
                if width < 800:
                    overflow = page.evaluate("document.documentElement.scrollWidth") - width
                    if overflow > 0:
                        findings.setdefault(f"{email} {path}", []).append(f"page {overflow}px wider than the phone")
            screenshot(page, f"{email.split('@')[0]}-last-page")
        finally:
            context.close()
    assert findings == {}
