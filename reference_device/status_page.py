"""The operator's status page: one self-contained HTML document, no external assets.

The panel is rendered here, server side, with every value escaped; the page script only
fetches `/panel` again every second and swaps it in, and posts control actions as JSON.
Keeping all rendering (and so all escaping) in Python means one place to get it right.
"""

from __future__ import annotations

import functools
import json
import time
from html import escape
from typing import Any
from urllib.parse import urlsplit

from reference_device.qr import format_code, qr_svg
from reference_device.status_view import (
    human_bytes,
    human_rate,
    normalize,
    progress_fraction,
    source_lines,
)

__all__ = ["render_page", "render_panel", "render_qr_svg"]

_SHOW_CODE = ("requesting_code", "showing_code")
_CAN_CANCEL_PAIRING = ("requesting_code", "showing_code", "approved")
_CAN_PAIR = ("unpaired", "cancelled", "expired", "denied", "error", "repair_needed")
_MAX_ROWS = 500
_SOURCE_BAD = ("error", "claim_failed", "disconnected")


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _safe_link(url: Any) -> str | None:
    """Only http(s) links become clickable (no javascript: or data: URLs)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("https", "http") and parts.netloc else None


@functools.lru_cache(maxsize=8)
def _svg_for(link: str) -> str:
    return qr_svg(link, box_size=6)


def render_qr_svg(snapshot: dict[str, Any]) -> str | None:
    """The QR code of the current pairing link, or None when no code is shown."""
    p = normalize(snapshot)["pairing"]
    link = p.get("verification_uri_complete")
    if p.get("state") not in _SHOW_CODE or not isinstance(link, str) or not link:
        return None
    return _svg_for(link)


def _button(label: str, action: str, body: dict[str, Any] | None = None, *, cls: str = "",
            selection: bool = False) -> str:
    attrs = [f'data-action="{_e(action)}"']
    if body is not None:
        attrs.append(f'data-body="{_e(json.dumps(body))}"')
    if selection:
        attrs.append('data-selection="1"')
    if cls:
        attrs.append(f'class="{_e(cls)}"')
    return f"<button type=\"button\" {' '.join(attrs)}>{_e(label)}</button>"


def _ago(ts: Any) -> str:
    try:
        delta = time.time() - float(ts)
    except (TypeError, ValueError):
        return "never"
    if delta < 0:
        return "just now"
    return f"{delta:.0f} s ago"


def _pairing(s: dict[str, Any]) -> str:
    p = s["pairing"]
    state = p.get("state")
    out = [f'<section id="pairing"><h2>Pairing</h2><p>State: <b class="state">{_e(state)}</b></p>']
    if state in _SHOW_CODE and p.get("user_code"):
        out.append(f'<p class="code" id="user-code">{_e(format_code(str(p["user_code"])))}</p>')
        link = _safe_link(p.get("verification_uri_complete")) or _safe_link(p.get("verification_uri"))
        svg = render_qr_svg(s)
        if svg:
            out.append(f'<div class="qr">{svg}</div>')
        if link:
            out.append(f'<p>Open <a href="{_e(link)}" rel="noreferrer">{_e(link)}</a></p>')
        if p.get("expires_at"):
            try:
                left = max(0, int(float(p["expires_at"]) - time.time()))
                out.append(f"<p>Code expires in {left // 60} min {left % 60} s</p>")
            except (TypeError, ValueError):
                pass
    if p.get("error"):
        out.append(f'<p class="bad">{_e(p["error"])}</p>')
    buttons = []
    if state in _CAN_CANCEL_PAIRING:
        buttons.append(_button("Cancel pairing", "pairing/cancel", {}))
    if state in _CAN_PAIR:
        buttons.append(_button("Pair", "pairing/start", {}))
    if state == "paired":
        buttons.append(_button("Log out", "logout", {}, cls="danger"))
    out.append(f"<p>{' '.join(buttons)}</p></section>")
    return "".join(out)


def _summary(s: dict[str, Any]) -> str:
    q, n, t, k, dev = s["queue"], s["network"], s["token"], s["socket"], s["device"]
    proj = s["project"].get("name") or "—"
    online = "online" if n.get("online") else "offline"
    rows = [
        ("Device", f"{dev.get('name') or '?'} ({dev.get('kind') or '?'}, firmware {dev.get('firmware') or '?'})"),
        ("Project", proj),
        ("Cloud", s.get("cloud_status")),
        ("Token", t.get("state")),
        ("Network", f"{online}, {n.get('type')}, {human_rate(n.get('throughput_bps'))}, health {n.get('health')}"),
        ("Socket", f"{'connected' if k.get('connected') else 'disconnected'} ({k.get('kind') or '-'}, last beat {_ago(k.get('last_beat_at'))})"),
        ("Remaining", f"{q.get('remaining_count')} files, {human_bytes(q.get('remaining_bytes'))}"),
        ("Uploads", "completed {} · queued {} · uploading {} · failed {} · quarantined {} · held {} · paused {} · cancelled {}".format(
            *(q.get(x, 0) for x in ("completed", "queued", "uploading", "failed", "quarantined", "held", "paused", "cancelled")))),
    ]
    body = "".join(f'<tr><th>{_e(k_)}</th><td id="{_e(k_.lower())}">{_e(v)}</td></tr>' for k_, v in rows)
    for kind, state, text in source_lines(s):
        cls = ' class="bad"' if state in _SOURCE_BAD else ""
        body += f'<tr><th>Source: {_e(kind)}</th><td id="source-{_e(kind)}"{cls}>{_e(text)}</td></tr>'
    if n.get("last_error"):
        body += f'<tr><th>Network error</th><td class="bad">{_e(n["last_error"])}</td></tr>'
    mode = s.get("mode")
    other = "manual" if mode == "auto" else "auto"
    toggle = _button(f"Switch to {other}", "mode", {"mode": other})
    return (f'<section id="summary"><table class="kv">{body}'
            f'<tr><th>Mode</th><td><b id="mode">{_e(mode)}</b> {toggle}</td></tr></table></section>')


def _current(s: dict[str, Any]) -> str:
    cur = s.get("current")
    if not cur:
        return '<section id="current"><h2>Current file</h2><p>Idle</p></section>'
    frac = progress_fraction(cur)
    return (
        '<section id="current"><h2>Current file</h2>'
        f'<p>{_e(cur.get("name"))} — {human_bytes(cur.get("bytes_done"))} of {human_bytes(cur.get("size"))}'
        f' ({frac * 100:.1f}%)</p>'
        f'<progress max="1000" value="{int(frac * 1000)}">{frac * 100:.0f}%</progress></section>'
    )


def _files(s: dict[str, Any]) -> str:
    files = s["files"]
    rows = []
    for f in files[:_MAX_ROWS]:
        fid = f.get("id")
        fid_s = "" if fid is None else str(fid)
        state = f.get("state")
        try:
            prio = int(f.get("priority") or 0)
        except (TypeError, ValueError):
            prio = 0
        actions = []
        if state in ("queued", "held", "paused", "failed", "cancelled"):
            actions.append(_button("Upload", "upload", {"ids": [fid_s]}))
        if state in ("queued", "uploading", "paused", "held"):
            actions.append(_button("Cancel", "cancel", {"ids": [fid_s]}))
        if state in ("failed", "cancelled"):
            actions.append(_button("Retry", "retry", {"ids": [fid_s]}))
        if state in ("queued", "paused", "held"):
            actions.append(_button("▲", "priority", {"id": fid_s, "priority": prio + 10}))
            actions.append(_button("▼", "priority", {"id": fid_s, "priority": prio - 10}))
        rows.append(
            f'<tr class="st-{_e(state)}"><td><input type="checkbox" data-select value="{_e(fid_s)}"></td>'
            f"<td>{_e(f.get('name'))}</td><td>{_e(state)}</td><td>{_e(f.get('reason') or '')}</td>"
            f"<td>{human_bytes(f.get('bytes_done'))} / {human_bytes(f.get('size'))}</td>"
            f"<td>{prio}</td><td>{''.join(actions)}</td></tr>"
        )
    more = ""
    if len(files) > _MAX_ROWS:
        more = f"<p>… and {len(files) - _MAX_ROWS} more (see /status.json)</p>"
    bulk = " ".join([
        _button("Upload selected", "upload", selection=True),
        _button("Upload all", "upload", {"all": True}),
        _button("Cancel selected", "cancel", selection=True),
        _button("Cancel all", "cancel", {"all": True}, cls="danger"),
        _button("Retry selected", "retry", selection=True),
        _button("Retry all failed", "retry", {"all": True}),
    ])
    return (
        f'<section id="files"><h2>Files ({len(files)})</h2><p>{bulk}</p>'
        '<table class="files"><thead><tr><th></th><th>Name</th><th>State</th><th>Reason</th>'
        f'<th>Bytes</th><th>Priority</th><th></th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
        f"{more}</section>"
    )


def render_panel(snapshot: dict[str, Any]) -> str:
    """The live part of the page (swapped in every second by the page script)."""
    s = normalize(snapshot)
    return _pairing(s) + _summary(s) + _current(s) + _files(s)


_CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:1em auto;max-width:72em;padding:0 1em;color:#111}
h1{font-size:1.4em}h2{font-size:1.1em;margin:.8em 0 .3em}
.code{font:bold 3.2em/1.1 ui-monospace,monospace;letter-spacing:.15em;margin:.2em 0}
.qr svg{width:12em;height:12em}
table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:left;vertical-align:top}
table.files{width:100%}table.files tr{border-top:1px solid #ddd}
.kv th{color:#555;font-weight:normal}.bad{color:#b00}
progress{width:100%;height:1.2em}button{margin:.1em}button.danger{color:#b00}
.st-done td{color:#070}.st-failed td,.st-quarantined td{color:#b00}
#msg{min-height:1.3em;color:#555}
"""

_JS = """
const panel=document.getElementById('panel'),msg=document.getElementById('msg');
const sel=new Set();
function say(t){msg.textContent=t}
function restore(){for(const b of panel.querySelectorAll('input[data-select]')){b.checked=sel.has(b.value)}}
async function refresh(){
  try{const r=await fetch('panel',{cache:'no-store'});
    if(!r.ok){say('status unavailable ('+r.status+')');return}
    panel.innerHTML=await r.text();restore();
  }catch(e){say('device not reachable')}
}
async function post(action,body){
  const r=await fetch('api/'+action,{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify(body)});
  const j=await r.json().catch(()=>({}));
  say(r.ok?action+': ok':action+': '+(j.error||r.status));refresh();
}
document.addEventListener('change',ev=>{const t=ev.target;
  if(t.matches('input[data-select]')){t.checked?sel.add(t.value):sel.delete(t.value)}});
document.addEventListener('click',ev=>{const b=ev.target.closest('button[data-action]');if(!b)return;
  let body=JSON.parse(b.dataset.body||'{}');
  if(b.dataset.selection){if(!sel.size){say('select files first');return}body={ids:[...sel]}}
  post(b.dataset.action,body);});
document.getElementById('ft-form').addEventListener('submit',ev=>{ev.preventDefault();
  const ft=document.getElementById('ft').value.trim(),p=parseInt(document.getElementById('ftp').value,10);
  if(!ft||isNaN(p)){say('give a file type and an integer priority');return}
  post('priority',{filetype:ft,priority:p});});
setInterval(refresh,1000);
"""


def render_page(snapshot: dict[str, Any], *, nonce: str) -> str:
    """The whole page; `nonce` must match the Content-Security-Policy script nonce."""
    s = normalize(snapshot)
    title = f"{s['device'].get('name') or 'Reference device'} — C2C status"
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1><div id=\"msg\" role=\"status\"></div>"
        f'<div id="panel">{render_panel(s)}</div>'
        '<section><h2>File-type priority</h2><form id="ft-form">'
        '<input id="ft" placeholder=".mov" size="8"> <input id="ftp" type="number" value="50" size="6"> '
        '<button type="submit">Set</button></form></section>'
        f'<script nonce="{_e(nonce)}">{_JS}</script></body></html>'
    )
