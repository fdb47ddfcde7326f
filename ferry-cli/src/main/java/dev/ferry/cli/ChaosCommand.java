package dev.ferry.cli;

import dev.ferry.api.Json;
import dev.ferry.cli.chaos.Cell;
import dev.ferry.cli.chaos.CellResult;
import dev.ferry.cli.chaos.ChaosRunner;
import dev.ferry.cli.chaos.Fault;
import dev.ferry.cli.chaos.FaultMatrix;
import dev.ferry.lab.Lab;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ferry chaos}: the fault matrix. Every cell migrates a Redis pod under write load while
 * one fault strikes one phase, then heals the lab, recovers, and checks the invariants.
 */
@Command(name = "chaos", mixinStandardHelpOptions = true,
    description = "Runs the fault matrix (fault x phase x strategy) on a lab of its own and checks, after each cell,"
        + " that every acknowledged write survived in exactly one running copy, the IP never had two owners, the"
        + " recorded outcome matches, and nothing leaked. Exits 1 if any cell broke an invariant.")
final class ChaosCommand implements Callable<Integer> {
  @Option(names = "--quick", description = "only the quick slice (about 10 cells, a few minutes)")
  boolean quick;

  @Option(names = "--strategy", description = "only these strategies (repeatable; default: ${COMPLETION-CANDIDATES})",
      completionCandidates = Strategies.class)
  List<String> strategies = new ArrayList<>();

  @Option(names = "--fault", description = "only these faults (repeatable), by id: none, source-agent-kill, ...")
  List<String> faults = new ArrayList<>();

  @Option(names = "--phase", description = "only cells striking these phases (repeatable), as the table names them:"
      + " Preparing, Dumping, Transferring, Restoring, Cutover, Postcopy, whole ...")
  List<String> phases = new ArrayList<>();

  @Option(names = "--cell", paramLabel = "FAULT@PHASE/STRATEGY",
      description = "only these cells (repeatable), e.g. source-agent-kill@Postcopy/hybrid; other filters then ignored")
  List<String> cellNames = new ArrayList<>();

  @Option(names = "--ping-pong", paramLabel = "N",
      description = "instead of the matrix: N back-to-back migrations without a fault (each checked the same way)")
  int pingPong;

  @Option(names = "--json", description = "where to write the cells as JSON (default: bench/results/chaos.json; a"
      + " Markdown table goes beside it)")
  Path json;

  @Option(names = "--keep-lab", description = "leave the lab 'xchaos' up afterwards (to look at its logs)")
  boolean keepLab;

  static final class Strategies extends ArrayList<String> {
    Strategies() {
      super(FaultMatrix.STRATEGIES);
    }
  }

  @Override
  public Integer call() throws Exception {
    FerryCommand.requireRoot();
    for (String s : strategies) {
      if (!FaultMatrix.STRATEGIES.contains(s)) {
        throw new IllegalArgumentException("unknown strategy '" + s + "'; one of " + FaultMatrix.STRATEGIES);
      }
    }
    List<Fault> only = faults.stream().map(Fault::byId).toList();
    if (pingPong < 0 || pingPong > 10_000) {
      throw new IllegalArgumentException("--ping-pong must be between 1 and 10000, got " + pingPong);
    }
    List<Cell> cells = cells(only);
    if (cells.isEmpty()) {
      throw new IllegalArgumentException("no cell matches --strategy " + strategies + ", --fault " + faults + " and --phase "
          + phases);
    }
    Path home = Path.of(System.getenv().getOrDefault("FERRY_HOME", "."));
    Path out = json != null ? json : home.resolve("bench/results/" + (pingPong > 0 ? "ping-pong" : "chaos") + ".json");
    System.out.printf("ferry chaos: %d cells on lab 'xchaos' (Redis under write load, one fault per migration)%n",
        cells.size());
    List<CellResult> results = new ArrayList<>();
    long t0 = System.currentTimeMillis();
    Lab.down("xchaos");
    try (ChaosRunner runner = new ChaosRunner("xchaos", System.out)) {
      for (Cell c : cells) {
        results.add(runner.run(c));
        write(out, results); // a long run's results so far survive an interruption
      }
    } finally {
      if (!keepLab) {
        Lab.down("xchaos");
      }
    }
    String md = markdown(results, (System.currentTimeMillis() - t0) / 1000);
    System.out.println();
    System.out.print(md);
    write(out, results);
    Path mdFile = out.resolveSibling(out.getFileName().toString().replaceAll("\\.json$", "") + ".md");
    Files.writeString(mdFile, md);
    System.out.println("JSON: " + out + "\nMarkdown: " + mdFile);
    return results.stream().allMatch(CellResult::invariantsHeld) ? 0 : 1;
  }

  private List<Cell> cells(List<Fault> only) {
    if (pingPong > 0) {
      String s = strategies.isEmpty() ? "cold" : strategies.get(0);
      List<Cell> cells = new ArrayList<>();
      for (int i = 0; i < pingPong; i++) {
        cells.add(new Cell(Fault.NONE, null, s));
      }
      return cells;
    }
    if (!cellNames.isEmpty()) {
      return cellNames.stream().map(Cell::parse).toList();
    }
    List<Cell> all = quick ? FaultMatrix.quick()
        : FaultMatrix.full(strategies.isEmpty() ? FaultMatrix.STRATEGIES : strategies);
    return all.stream()
        .filter(c -> strategies.isEmpty() || strategies.contains(c.strategy()))
        .filter(c -> only.isEmpty() || only.contains(c.fault()))
        .filter(c -> phases.isEmpty() || phases.stream().anyMatch(p -> p.equalsIgnoreCase(c.phaseName())))
        .toList();
  }

  private static void write(Path out, List<CellResult> results) throws java.io.IOException {
    Files.createDirectories(out.toAbsolutePath().getParent());
    Json.writeFile(out, results);
  }

  static String markdown(List<CellResult> results, long seconds) {
    StringBuilder b = new StringBuilder();
    b.append("| fault | phase | strategy | outcome | struck at | invariants | recover ms | violations |\n");
    b.append("|---|---|---|---|---|---|---:|---|\n");
    for (CellResult r : results) {
      b.append(String.format("| %s | %s | %s | %s | %s | %s | %d | %s |%n", r.fault(), r.phase(), r.strategy(),
          r.outcome(), r.injected() ? r.injectedAt() : "missed", r.invariantsHeld() ? "held" : "**violated**",
          r.recoverMs(), String.join("; ", r.violations()).replace("|", "/")));
    }
    long held = results.stream().filter(CellResult::invariantsHeld).count();
    long lost = results.stream().filter(r -> r.violations().stream().anyMatch(v -> v.contains("writes lost"))).count();
    b.append(String.format("%n%d of %d cells held every invariant; %d lost acknowledged writes; %d faults missed"
        + " their phase; %d s in all.%n", held, results.size(), lost,
        results.stream().filter(r -> !r.injected()).count(), seconds));
    return b.toString();
  }
}
