"""`make install` lays the module out in ejabberd's contrib layout under
DESTDIR/PREFIX, and `make uninstall` removes exactly that. (Every server in
this suite is itself started from such an install.)"""

import subprocess

from sandbox import REPO


def make(*args):
    subprocess.run(["make", "-s", "-C", str(REPO), *args], check=True, capture_output=True,
                   timeout=600)


def test_install_and_uninstall_honour_destdir_and_prefix(tmp_path):
    prefix = "/var/lib/ejabberd/.ejabberd-modules"
    make("install", f"DESTDIR={tmp_path}", f"PREFIX={prefix}")
    module = tmp_path / prefix.lstrip("/") / "mod_clicktochat"
    installed = sorted(str(p.relative_to(module)) for p in module.rglob("*") if p.is_file())
    # One beam per Erlang source (no header, no test module), and nothing else.
    beams = sorted(f"ebin/{source.stem}.beam" for source in (REPO / "erlang_src").glob("*.erl"))
    assert "ebin/mod_clicktochat.beam" in beams and "ebin/clicktochat_nif.beam" in beams
    assert installed == sorted([
        "conf/mod_clicktochat.yml",
        *beams,
        "mod_clicktochat.spec",
        "priv/clicktochat_nif.so",
        "priv/demo.html",
        "priv/widget.js",
    ])
    assert (module / "priv/clicktochat_nif.so").stat().st_mode & 0o111
    # The beams are the ones just built from the tree.
    assert (module / "ebin/mod_clicktochat.beam").read_bytes() == \
        (REPO / "ebin/mod_clicktochat.beam").read_bytes()

    make("uninstall", f"DESTDIR={tmp_path}", f"PREFIX={prefix}")
    assert not module.exists()
    assert (tmp_path / prefix.lstrip("/")).exists(), "only the module's own directory goes"
