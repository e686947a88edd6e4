// openba-report: renders a pipeline run's RUN_DIR/report.json as a
// self-contained report.html (inline SVG charts, no network) and prints the
// final table. The pipeline writes both itself; this re-renders them, e.g.
// for a run copied elsewhere or after a change to the page.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "report/report_html.h"
#include "tools/cli_common.h"
#include "util/error.h"
#include "util/fs.h"

int main(int argc, char** argv) {
  return openba::run_tool("openba-report", [&] {
    CLI::App app{"Render a pipeline run's report.json as report.html and print its table."};
    std::string run_dir, out;
    bool quiet = false;
    app.add_option("run_dir", run_dir, "run directory holding report.json")->required();
    app.add_option("--out", out, "where to write the page (default RUN_DIR/report.html)");
    app.add_flag("--quiet", quiet, "print nothing on success");
    openba::parse_command_line(app, argc, argv);

    const std::string source = (std::filesystem::path(run_dir) / "report.json").string();
    nlohmann::ordered_json report;
    try {
      report = nlohmann::ordered_json::parse(openba::read_text_file(source));
    } catch (const nlohmann::json::exception& e) {
      throw openba::Error(source + ": malformed JSON: " + e.what());
    }
    const std::string html = openba::render_report_html(report, run_dir);
    const std::string table = openba::pipeline_table(report);
    if (out.empty()) out = (std::filesystem::path(run_dir) / "report.html").string();
    openba::StagingDir::write_file_atomically(out, html);
    if (!quiet) std::printf("%swrote %s\n", table.c_str(), out.c_str());
    return 0;
  });
}
