"""openba-report: the pipeline's report.html and final table, checked against
report.json and the step files it refers to (written by
tests/python/make_pipeline_run.py), by parsing the page as XML and by
rendering it in headless Chromium (tests/cli/chromium.py).

OPENBA_REPORT_PNG=path keeps the full-page screenshot of the fixture."""
import json
import math
import os
import re
import shutil
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

import chromium
from cli_support import PYTHON_DIR, ToolTestCase, read_json, run, tool

REPORT = tool("openba-report")
MAKE_RUN = os.path.join(PYTHON_DIR, "make_pipeline_run.py")
RED, BLUE, LIGHT = "#e45756", "#4c78a8", "#cfd4dc"
ARROW = "\u2192"


def make_run(path, *args):
    run([sys.executable, MAKE_RUN, path, *args])
    return read_json(os.path.join(path, "report.json"))


def parse_page(path):
    """The page as an XML tree with namespaces stripped from the tags."""
    tree = ET.parse(path)
    for el in tree.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return tree.getroot()


def chart(root, chart_id):
    found = [el for el in root.iter("svg") if el.get("id") == chart_id]
    if len(found) != 1:
        raise AssertionError(f"expected one chart {chart_id}, found {len(found)}")
    return found[0]


def title_of(el):
    t = el.find("title")
    return t.text if t is not None else ""


def text_of(el):
    return "".join(el.itertext())


def human_count(n):
    """util/format.cpp's human_count, independently."""
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return str(n)


def require_chromium(test):
    if not chromium.available():
        test.fail(f"chromium not found at {chromium.CHROMIUM}: run scripts/setup.sh (Debian's chromium package)")


class RenderedRun:
    """One fixture run rendered once per test class (Chromium takes seconds)."""

    @classmethod
    def render_fixture(cls, *fixture_args, height=3000):
        cls._tmp = tempfile.TemporaryDirectory(prefix="openba-report-")
        cls.run_dir = os.path.join(cls._tmp.name, "run")
        cls.report = make_run(cls.run_dir, *fixture_args)
        _, cls.stdout, cls.stderr = run([REPORT, cls.run_dir])
        cls.html = os.path.join(cls.run_dir, "report.html")
        cls.root = parse_page(cls.html)
        cls.height = height
        cls.rendered = None
        if chromium.available():
            cls.rendered = chromium.render(cls.html, os.path.join(cls._tmp.name, "page.png"), height=height)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def step(self, step_id):
        return next(s for s in self.report["steps"] if s["id"] == step_id)

    def step_file(self, relative):
        return read_json(os.path.join(self.run_dir, relative))


class ReportPage(RenderedRun, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.render_fixture()
        keep = os.environ.get("OPENBA_REPORT_PNG")
        if keep and chromium.available():
            full = os.path.join(cls._tmp.name, "full.png")
            chromium.render(cls.html, full, height=9000)
            chromium.trim_png(full, keep)

    def test_chromium_renders_it_without_errors(self):
        require_chromium(self)
        self.assertEqual(self.rendered["errors"], [])
        stats = chromium.png_stats(self.rendered["png"])
        self.assertEqual((stats["width"], stats["height"]), (1280, self.height))
        # Not blank: plenty of non-white pixels, no single colour covering all, many colours (charts, text).
        self.assertGreater(stats["non_white"], 0.2 * 1280 * self.height)
        self.assertLess(stats["background_share"], 0.9)
        self.assertGreater(stats["colours"], 50)
        for section in ("steps", "parameters", "heldout", "training", "layers", "width", "vocab", "baseline"):
            self.assertIn(f'id="{section}"', self.rendered["dom"])

    def test_xml_parser_accepts_it(self):
        require_chromium(self)
        self.assertNotIn("parsererror", self.rendered["xhtml_dom"])
        self.assertIn("<svg", self.rendered["xhtml_dom"])

    def test_self_contained(self):
        with open(self.html) as f:
            text = f.read()
        for el in self.root.iter():
            for name, value in el.attrib.items():
                if name.split("}")[-1] in ("href", "src", "action", "data", "poster", "srcset"):
                    self.assertTrue(value.startswith("#"), f"<{el.tag} {name}={value!r}>")
        self.assertEqual([el.tag for el in self.root.iter() if el.tag in ("script", "link", "img", "iframe", "object")], [])
        style = "".join(text_of(el) for el in self.root.iter("style"))
        self.assertNotIn("@import", style)
        self.assertEqual(re.findall(r"url\((?!#)", style), [])
        # The only URLs are namespace names (identifiers, never fetched).
        without_namespaces = re.sub(r'xmlns(:\w+)?="[^"]*"', "", text)
        self.assertNotRegex(without_namespaces, r"https?://")

    def test_header_summary(self):
        s = self.report["summary"]
        header = text_of(self.root.find(".//header"))
        self.assertIn(self.report["pipeline"]["name"], header)
        self.assertIn(f"{human_count(s['base_parameters'])} {ARROW} {human_count(s['final_parameters'])}", header)
        self.assertIn(f"{s['compression_ratio']:.2f}x", header)
        self.assertIn(f"{100 * s['removed_fraction']:.1f}% fewer", header)
        self.assertIn(f"{s['base_heldout_loss']:.4f} {ARROW} {s['final_heldout_loss']:.4f}", header)

    def test_step_table_lists_every_step(self):
        section = next(el for el in self.root.iter("section") if el.get("id") == "steps")
        rows = [[text_of(td).strip() for td in tr.findall("td")] for tr in section.iter("tr")]
        rows = [r for r in rows if r]
        self.assertEqual(len(rows), 1 + len(self.report["steps"]))  # the input, then each step
        steps = self.report["steps"]
        for row, s in zip(rows[1:], steps):
            self.assertEqual(row[0], str(s["index"]))
            self.assertTrue(row[1].startswith(s["id"]), row)
            self.assertEqual(row[2], s["kind"])
            self.assertEqual(row[3], human_count(s["parameters"]))
            self.assertEqual(row[5], f"{s['encoder_layers']} / {s['decoder_layers']}")
            self.assertEqual(row[6], f"{s['d_model']} / {s['ffn_hidden']} / {s['num_heads']}")
            self.assertEqual(row[8], f"{s['heldout_before']:.4f} {ARROW} {s['heldout_after']:.4f}")
        # A pruning step pairs its loss with that of the recovery step after it.
        for i, s in enumerate(steps[:-1]):
            if s["kind"] in ("layer", "neuron", "vocab") and steps[i + 1]["kind"] == "pretrain":
                self.assertEqual(rows[i + 1][9], f"{s['heldout_after']:.4f} {ARROW} {steps[i + 1]['heldout_after']:.4f}")

    def test_parameter_bars_are_proportional(self):
        bars = {b.get("data-key"): b for b in chart(self.root, "chart-parameters").iter("rect") if b.get("class") == "bar"}
        expected = {"input": self.report["input"]["parameters"], **{s["id"]: s["parameters"] for s in self.report["steps"]}}
        self.assertEqual(set(bars), set(expected))
        scale = {k: float(bars[k].get("height")) / v for k, v in expected.items()}
        for k, v in scale.items():
            self.assertAlmostEqual(v / scale["input"], 1.0, delta=0.002, msg=k)
        # Bars stand on one baseline, in step order, each labelled with its count and ratio.
        bottoms = {round(float(b.get("y")) + float(b.get("height")), 1) for b in bars.values()}
        self.assertEqual(len(bottoms), 1)
        xs = [float(bars[k].get("x")) for k in expected]
        self.assertEqual(xs, sorted(xs))
        labels = [text_of(t) for t in chart(self.root, "chart-parameters").iter("text")]
        for s in self.report["steps"]:
            self.assertIn(s["id"], labels)
            self.assertIn(f"{s['compression_ratio']:.2f}x", labels)

    def test_heldout_markers_follow_the_losses(self):
        svg = chart(self.root, "chart-heldout")
        after = {}
        for m in svg.iter("circle"):
            step_id = title_of(m).split(" (")[0]
            if step_id in {s["id"] for s in self.report["steps"]}:
                after[step_id] = m
        steps = self.report["steps"]
        self.assertEqual(set(after), {s["id"] for s in steps})
        # y is one linear function of the loss (two points fix it; the rest must agree).
        a, b = steps[1], steps[3]
        ya, yb = float(after[a["id"]].get("cy")), float(after[b["id"]].get("cy"))
        slope = (yb - ya) / (b["heldout_after"] - a["heldout_after"])
        self.assertLess(slope, 0)  # higher loss is higher up
        for s in steps:
            self.assertAlmostEqual(float(after[s["id"]].get("cy")), ya + slope * (s["heldout_after"] - a["heldout_after"]), delta=0.02)
        xs = [float(after[s["id"]].get("cx")) for s in steps]
        self.assertEqual(xs, sorted(xs))
        # Pruning and recovery steps are told apart by colour.
        fill = {s["kind"]: after[s["id"]].get("fill") for s in steps}
        self.assertNotEqual(fill["layer"], fill["pretrain"])
        self.assertEqual(fill["layer"], fill["neuron"])
        # The random baseline is its own marker, at its own loss.
        baseline = [p for p in svg.iter("path") if p.get("class") == "marker"]
        with_baseline = [s for s in steps if "baseline" in s]
        self.assertEqual(len(baseline), len(with_baseline))
        self.assertIn(f"{with_baseline[0]['baseline']['heldout_after']:.4f}", title_of(baseline[0]))

    def test_training_curves_come_from_metrics(self):
        for s in self.report["steps"]:
            if s["kind"] != "pretrain":
                continue
            with open(os.path.join(self.run_dir, s["train"]["metrics"])) as f:
                lines = [json.loads(line) for line in f if line.strip()]
            svg = chart(self.root, f"chart-train-{s['id']}")
            paths = {p.get("data-key"): p for p in svg.iter("path") if p.get("class") == "series"}
            train_points = len(re.findall(r"[ML]", paths["training loss"].get("d")))
            self.assertEqual(train_points, sum(1 for m in lines if "loss" in m))
            markers = [c for c in svg.iter("circle") if c.get("class") == "marker"]
            evals = [m for m in lines if "eval_loss" in m]
            self.assertEqual(len(markers), len(evals))
            self.assertEqual([float(c.get("data-y")) for c in markers], [m["eval_loss"] for m in evals])

    def test_layer_scores_mark_the_dropped_layers(self):
        s = self.step("02-layer")
        rep = self.step_file(s["report"])
        for stack in ("encoder", "decoder"):
            scores = rep["scores"][stack]
            dropped = {e["layer"] for e in rep["removed"][stack + "_layers"]}
            bars = [b for b in chart(self.root, f"chart-layers-02-layer-{stack}").iter("rect") if b.get("class") == "bar"]
            self.assertEqual(len(bars), len(scores))
            for i, (bar, score) in enumerate(zip(bars, scores)):
                self.assertEqual(bar.get("fill"), RED if i in dropped else BLUE, f"{stack} layer {i}")
                ratio = (float(bar.get("height")) / score) / (float(bars[0].get("height")) / scores[0])
                self.assertAlmostEqual(ratio, 1.0, delta=0.002, msg=f"{stack} layer {i}")

    def test_explicit_layer_lists_as_a_strip(self):
        rep = self.step_file(self.step("08-layer")["report"])
        self.assertNotIn("scores", rep)
        cells = [c for c in chart(self.root, "chart-layers-08-layer").iter("rect") if c.get("class") == "cell"]
        dropped = sorted(c.get("data-key") for c in cells if c.get("data-value") == "dropped")
        self.assertEqual(dropped, sorted(f"decoder {e['layer']}" for e in rep["removed"]["decoder_layers"]))
        self.assertEqual(len(cells), rep["input"]["encoder_layers"] + rep["input"]["decoder_layers"])

    def test_width_histograms_count_every_positive_score(self):
        rep = self.step_file(self.step("04-neuron")["report"])
        for chart_key, fields in (("ffn", ["encoder_ffn", "decoder_ffn"]), ("heads", ["encoder_heads", "decoder_heads"]),
                                  ("cross-heads", ["decoder_cross_heads"]), ("hidden", ["hidden"])):
            want = {"kept": 0, "removed": 0}
            off_axis = 0
            for field in fields:
                rows, kept = rep["scores"][field], rep["kept"][field]
                if field == "hidden":
                    rows, kept = [rows], [kept]
                for row, keep in zip(rows, kept):
                    for i, v in enumerate(row):
                        if v > 0:
                            want["kept" if i in keep else "removed"] += 1
                        else:
                            off_axis += 1
            svg = chart(self.root, f"chart-width-04-neuron-{chart_key}")
            got = {"kept": 0, "removed": 0}
            for b in svg.iter("rect"):
                if b.get("class") == "bin":
                    got[b.get("data-key")] += float(b.get("data-value"))
            self.assertEqual(got, want, chart_key)
            self.assertGreater(want["removed"], 0)
            if off_axis:
                self.assertIn(f"{off_axis} scores are zero", text_of(self.root.find(".//section[@id='width']")))

    def test_vocab_coverage_and_numbers(self):
        tok = self.step_file(self.step("06-vocab")["report"])["tokenizer"]
        svg = chart(self.root, "chart-vocab-06-vocab")
        chosen = [p for p in svg.iter("path") if p.get("class") == "marker"]
        self.assertEqual(len(chosen), 1)
        self.assertEqual(float(chosen[0].get("data-x")), tok["pieces_after"])
        self.assertAlmostEqual(float(chosen[0].get("data-y")), 1 - tok["corpus_tokens_dropped_share"], places=9)
        section = text_of(self.root.find(".//section[@id='vocab']"))
        self.assertIn(f"{tok['pieces_before']} {ARROW} {tok['pieces_after']}", section)
        self.assertIn(f"{100 * tok['changed_token_share']:.3f}%", section)
        self.assertIn(f"{100 * tok['heldout_tokens_mapped_to_unk_share']:.3f}%", section)

    def test_random_baseline_pair(self):
        s = next(s for s in self.report["steps"] if "baseline" in s)
        bars = {b.get("data-key"): b for b in chart(self.root, "chart-baseline").iter("rect") if b.get("class") == "bar"}
        scored, random_ = float(bars[f"{s['id']}/scored"].get("height")), float(bars[f"{s['id']}/random"].get("height"))
        self.assertAlmostEqual(random_ / scored, s["baseline"]["heldout_after"] / s["heldout_after"], places=3)

    def test_every_chart_has_title_labels_and_hover(self):
        charts = [el for el in self.root.iter("svg")]
        self.assertGreater(len(charts), 12)
        for svg in charts:
            self.assertTrue(title_of(svg), svg.get("id"))
            marks = [el for el in svg.iter() if el.get("class") in ("bar", "marker", "bin", "cell")]
            self.assertTrue(marks, svg.get("id"))
            for m in marks:
                self.assertTrue(title_of(m), f"{svg.get('id')}: a mark without hover text")

    def test_table_printed(self):
        s = self.report["summary"]
        for step in self.report["steps"]:
            self.assertRegex(self.stdout, rf"\n\s+{step['index']}\s+{step['id']}\s+{step['kind']}\s")
        self.assertIn(f"compression: {human_count(s['base_parameters'])} -> {human_count(s['final_parameters'])} parameters, "
                      f"{s['compression_ratio']:.2f}x, {100 * s['removed_fraction']:.1f}% fewer", self.stdout)
        self.assertIn(f"held-out loss: {s['base_heldout_loss']:.4f} -> {s['final_heldout_loss']:.4f}", self.stdout)
        self.assertIn(f"wrote {self.html}", self.stdout)


class PartialRun(RenderedRun, unittest.TestCase):
    """A run still going: the last steps have not run (planned shape, no losses, no files)."""

    @classmethod
    def setUpClass(cls):
        cls.render_fixture("--not-run", "4")

    def test_renders_cleanly(self):
        require_chromium(self)
        self.assertEqual(self.rendered["errors"], [])
        self.assertNotIn("parsererror", self.rendered["xhtml_dom"])

    def test_not_run_steps_greyed(self):
        pending = [s for s in self.report["steps"] if s["status"] != "done"]
        self.assertEqual(len(pending), 4)
        rows = [tr for tr in self.root.iter("tr") if tr.get("class") == "not-run"]
        self.assertEqual([text_of(tr.findall("td")[1]).strip()[:len(s["id"])] for tr, s in zip(rows, pending)],
                         [s["id"] for s in pending])
        bars = {b.get("data-key"): b for b in chart(self.root, "chart-parameters").iter("rect") if b.get("class") == "bar"}
        for s in pending:
            self.assertEqual(bars[s["id"]].get("fill"), LIGHT)
        page = text_of(self.root)
        self.assertIn("Not run yet: 07-pretrain, 09-pretrain.", page)
        self.assertIn("Not run yet: 08-layer.", page)
        self.assertIn("not run", self.stdout)

    def test_summary_counts(self):
        self.assertIn(f"{len(self.report['steps']) - 4} of {len(self.report['steps'])} steps done", self.stdout)


class NothingRunYet(ToolTestCase):
    def test_sections_say_why_they_are_empty(self):
        run_dir = self.path("run")
        make_run(run_dir, "--not-run", "10")
        run([REPORT, run_dir, "--quiet"])
        root = parse_page(os.path.join(run_dir, "report.html"))
        page = text_of(root)
        for sentence in ("No step has a held-out loss yet", "No pretraining step has run yet", "No layer step has run yet",
                         "No neuron (width) step has run yet", "No vocabulary step has run yet",
                         "No pruning step ran a random-selection baseline"):
            self.assertIn(sentence, page)


class Escaping(ToolTestCase):
    NAME = 'pruning <b>bold</b> & "friends"'
    DESCRIPTION = "x < y && z > 'w' </p><script>alert(1)</script> &amp; done"

    def test_text_is_escaped(self):
        run_dir = self.path("run")
        make_run(run_dir, "--name", self.NAME, "--description", self.DESCRIPTION)
        run([REPORT, run_dir, "--quiet"])
        html = os.path.join(run_dir, "report.html")
        root = parse_page(html)
        self.assertEqual(root.find(".//h1").text, self.NAME)
        self.assertEqual(text_of(root.find(".//p[@class='description']")), self.DESCRIPTION)
        self.assertEqual(list(root.iter("script")), [])
        self.assertEqual(list(root.iter("b")), [])
        self.assertIn(self.NAME, root.find(".//title").text)
        require_chromium(self)
        rendered = chromium.render(html, self.path("page.png"), height=800)
        self.assertEqual(rendered["errors"], [])
        self.assertNotIn("<script", rendered["dom"])
        self.assertIn("pruning &lt;b&gt;bold&lt;/b&gt; &amp; \"friends\"", rendered["dom"])


class BadInputs(ToolTestCase):
    def setUp(self):
        super().setUp()
        self.run_dir = self.path("run")
        make_run(self.run_dir)
        self.html = os.path.join(self.run_dir, "report.html")

    def fails_naming(self, *needles):
        err = self.assertFails([REPORT, self.run_dir], *needles)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertTrue(err.startswith("openba-report: error: "), err)
        self.assertFalse(os.path.exists(self.html), "a failed render must not leave a page")
        return err

    def test_missing_metrics_file(self):
        path = os.path.join(self.run_dir, "03-pretrain", "metrics.jsonl")
        os.remove(path)
        self.fails_naming(path)

    def test_malformed_metrics_line(self):
        path = os.path.join(self.run_dir, "05-pretrain", "metrics.jsonl")
        with open(path, "a") as f:
            f.write('{"step": 301, "loss": \n')
        self.fails_naming(path + ":", "malformed JSON")

    def test_missing_step_report(self):
        path = os.path.join(self.run_dir, "04-neuron", "report.json")
        os.remove(path)
        self.fails_naming(path)

    def test_malformed_step_report(self):
        path = os.path.join(self.run_dir, "02-layer", "report.json")
        with open(path, "w") as f:
            f.write('{"scores": ')
        self.fails_naming(path, "malformed JSON")

    def test_step_report_with_wrong_shapes(self):
        path = os.path.join(self.run_dir, "04-neuron", "report.json")
        rep = read_json(path)
        rep["kept"]["encoder_ffn"][0].append(100000)
        with open(path, "w") as f:
            json.dump(rep, f)
        self.fails_naming(path, "kept.encoder_ffn", "100000")

    def test_missing_report_json(self):
        os.remove(os.path.join(self.run_dir, "report.json"))
        self.fails_naming(os.path.join(self.run_dir, "report.json"))

    def test_report_json_field_of_the_wrong_type(self):
        path = os.path.join(self.run_dir, "report.json")
        rep = read_json(path)
        rep["steps"][2]["parameters"] = "lots"
        with open(path, "w") as f:
            json.dump(rep, f)
        self.fails_naming(path, "steps[2]", "parameters")

    def test_not_a_pipeline_report(self):
        shutil.copyfile(os.path.join(self.run_dir, "02-layer", "report.json"), os.path.join(self.run_dir, "report.json"))
        self.fails_naming(os.path.join(self.run_dir, "report.json"), "not a pipeline report")

    def test_out_in_a_missing_directory(self):
        out = self.path("no", "such", "page.html")
        self.assertFails([REPORT, self.run_dir, "--out", out], out)

    def test_out_elsewhere(self):
        out = self.path("page.html")
        _, stdout, _ = run([REPORT, self.run_dir, "--out", out])
        self.assertTrue(os.path.isfile(out))
        self.assertFalse(os.path.exists(self.html))
        self.assertIn(f"wrote {out}", stdout)


class ChromiumHelper(ToolTestCase):
    """The helper itself catches what it is meant to catch."""

    def setUp(self):
        super().setUp()
        require_chromium(self)

    def write(self, name, text):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_reports_script_errors_and_loads(self):
        page = self.write("bad.html", '<!DOCTYPE html><html><body><p>x</p><img src="missing.png"/>'
                                      '<link rel="stylesheet" href="http://192.0.2.1/x.css"/>'
                                      '<script>undefined_function();</script></body></html>')
        errors = chromium.render(page, self.path("bad.png"), height=300)["errors"]
        self.assertTrue(any("Uncaught" in e for e in errors), errors)
        self.assertTrue(any("missing.png" in e for e in errors), errors)
        self.assertTrue(any("192.0.2.1" in e for e in errors), errors)

    def test_reports_malformed_markup(self):
        page = self.write("bad.html", '<!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml"><body><p>a & b<br></p></body></html>')
        result = chromium.render(page, self.path("bad.png"), height=300)
        self.assertTrue(any(e.startswith("XML parser") for e in result["errors"]), result["errors"])

    def test_png_pixels(self):
        # A 200 x 100 red block at a known place on white: exactly that many red pixels.
        page = self.write("box.html", '<!DOCTYPE html><html><body style="margin:0;background:#fff">'
                                      '<div style="position:absolute;left:30px;top:40px;width:200px;height:100px;'
                                      'background:#ff0000"></div></body></html>')
        result = chromium.render(page, self.path("box.png"), height=400, width=640)
        self.assertEqual(result["errors"], [])
        width, height, channels, rows = chromium.read_png(self.path("box.png"))
        self.assertEqual((width, height), (640, 400))
        red = [(x // channels, y) for y, row in enumerate(rows) for x in range(0, len(row), channels)
               if row[x:x + 3] == b"\xff\x00\x00"]
        self.assertEqual(len(red), 200 * 100)
        self.assertEqual((min(red), max(red)), ((30, 40), (229, 139)))
        stats = chromium.png_stats(self.path("box.png"))
        self.assertEqual(stats["non_white"], 200 * 100)

    def test_png_round_trip(self):
        rows = [bytes((x * 7 + y * 13) & 255 for x in range(3 * 17)) for y in range(11)]
        chromium.write_png(self.path("t.png"), 17, 3, rows)
        self.assertEqual(chromium.read_png(self.path("t.png")), (17, 11, 3, rows))


if __name__ == "__main__":
    unittest.main()
