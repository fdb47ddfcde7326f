package dev.ferry.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class JavaCommandTest {
  @Test
  void runsThisJavaOnThisClassPathWithTheSharedFlagsBeforeTheMainClass() {
    List<String> cmd = JavaCommand.of("256m", Path.of("/run/x/tmp"), "dev.ferry.Main", List.of("agent", "--host", "a"));
    assertEquals(ProcessHandle.current().info().command().orElse("java"), cmd.get(0));
    int main = cmd.indexOf("dev.ferry.Main");
    assertEquals(List.of("-cp", JavaCommand.classPath()), cmd.subList(main - 2, main));
    assertEquals(List.of("agent", "--host", "a"), cmd.subList(main + 1, cmd.size()));
    List<String> flags = cmd.subList(1, main - 2);
    assertTrue(flags.contains("-Xmx256m"), flags.toString());
    assertTrue(flags.contains("-XX:+UseSerialGC"), flags.toString());
    assertTrue(flags.contains("-Djava.io.tmpdir=/run/x/tmp"), flags.toString());
    assertEquals(JavaCommand.nativeHotPaths(), flags.contains("-XX:TieredStopAtLevel=1"), flags.toString());
  }

  @Test
  void leavesTheHeapToTheJvmWhenNoneIsGiven() {
    List<String> cmd = JavaCommand.of(null, Path.of("/tmp/t"), "M", List.of());
    assertFalse(cmd.stream().anyMatch(a -> a.startsWith("-Xmx")), cmd.toString());
    assertEquals("M", cmd.get(cmd.size() - 1));
  }
}
