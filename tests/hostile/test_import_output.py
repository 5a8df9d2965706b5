"""Where import (and every writer) puts files: only at OUT, only plain names inside it, one line
when the file system refuses; and what export copies from an HF folder: only its own files."""
from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from cli_helpers import invoke, one_line_error
from foreign import hf_gpt2
from hostile.helpers import ROOT, files_in, no_temp_files
from hostile.test_workbooks import manifest_of, with_manifest
from sheetnet.pipeline import export
from sheetnet.options import ExportOptions

EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def sqrt_book(tmp_path_factory) -> Path:
    book = tmp_path_factory.mktemp("base") / "sqrt.xlsx"
    export(EXAMPLES / "sqrt_2x2.pt", book)
    return book


@pytest.mark.parametrize("name", ["../../escaped.txt", "/tmp/abs-escaped.txt", "..", ".",
                                  "a\\b.txt", "nul\x00.txt", "bell\x07.txt", "config.json",
                                  ".hidden"])
def test_tokenizer_file_names_stay_in_the_folder(sqrt_book, tmp_path, name):
    manifest = manifest_of(sqrt_book)
    rec = manifest["meta"]["checkpoint"]
    rec["format"], rec["metadata"]["hf_config"] = "hf-gpt2", {"model_type": "gpt2"}
    rec["files"] = {name: "PWNED"}
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    book = with_manifest(sqrt_book, work / "bad.xlsx", manifest)
    before = files_in(tmp_path)
    one_line_error(invoke("import", book, work / "out"), "not a plain file name")
    assert files_in(tmp_path) == before
    assert not Path("/tmp/abs-escaped.txt").exists()
    no_temp_files(work)


def test_export_copies_no_symlink_out_of_the_folder(tmp_path):
    folder = tmp_path / "hf"
    hf_gpt2().save_pretrained(folder)
    (folder / "vocab.json").write_text('{"a": 0}')
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TEXT")
    (folder / "special_tokens_map.json").symlink_to(secret)
    res = invoke("export", folder, tmp_path / "gpt.xlsx", "--context", "2")
    assert res.exit_code == 0, res.output
    rec = manifest_of(tmp_path / "gpt.xlsx")["meta"]["checkpoint"]
    assert "TOP-SECRET" not in str(rec)
    assert "special_tokens_map.json" in rec["files_left"]


@pytest.mark.parametrize("argv", [("import", "BOOK", "model"),
                                  ("train", "sqrt", "model", "--hidden", "2", "--steps", "5")])
def test_output_without_extension(sqrt_book, tmp_path, argv):
    argv = [str(sqrt_book) if a == "BOOK" else str(tmp_path / a) if a == "model" else a
            for a in argv]
    res = invoke(*argv)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "model").is_file()
    no_temp_files(tmp_path)


@pytest.fixture
def small_fs(tmp_path):
    """A folder on a 64 KB tmpfs (full after a few writes), and one mounted read-only: real
    ENOSPC and EROFS (tests run as root, which a chmod 0555 folder does not stop)."""
    full, ro = tmp_path / "full", tmp_path / "ro"
    full.mkdir(), ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], check=True)
    try:
        yield {"full": full, "ro": ro}
    finally:
        subprocess.run(["umount", str(full)], check=False)
        subprocess.run(["umount", str(ro)], check=False)


@pytest.mark.parametrize("where, reason", [("full", "No space left on device"),
                                           ("ro", "Read-only file system")])
@pytest.mark.parametrize("command", ["import", "export"])
def test_output_folder_refuses_the_write(tmp_path, small_fs, where, reason, command):
    folder = small_fs[where]
    if command == "export":   # the gpt book is ~450 KB: more than the 64 KB folder holds
        args = ("export", EXAMPLES / "gpt.pt", folder / "gpt.xlsx", "--context", "4")
    else:                     # its checkpoint ~120 KB
        book = tmp_path / "gpt.xlsx"
        export(EXAMPLES / "gpt.pt", book, ExportOptions(context=4))
        args = ("import", book, folder / "gpt.pt")
    one_line_error(invoke(*args), "cannot write", reason)
    assert os.listdir(folder) == []


@pytest.mark.parametrize("where, reason", [("full", "No space left on device"),
                                           ("ro", "Read-only file system")])
def test_train_into_a_folder_that_refuses_the_write(small_fs, where, reason):
    # train writes through checkpoint.save_checkpoint -> files.atomic_path + torch_save
    folder = small_fs[where]
    before = set(os.listdir(folder))
    if where == "full":   # the sqrt checkpoint is ~2 KB: fill the folder first
        with open(folder / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
        before = {"filler"}
    res = invoke("train", "sqrt", folder / "model.pt", "--hidden", "2", "--steps", "5")
    one_line_error(res, "cannot write", reason)
    assert set(os.listdir(folder)) == before
    if where == "full":
        (folder / "filler").unlink()
