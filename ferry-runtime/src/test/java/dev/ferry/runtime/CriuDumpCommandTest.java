package dev.ferry.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.api.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CRIU command line built from runc's state asks what runc's checkpoint asks over RPC.
 * This test process stands in for a container's init (its /proc/PID/root is the host's root).
 */
class CriuDumpCommandTest {
  @TempDir Path tmp;

  private final long self = ProcessHandle.current().pid();

  private JsonNode state(String configFile, String netns) {
    String json = """
        {"id": "pod-app", "init_process_pid": %d,
         "cgroup_paths": {"": "/sys/fs/cgroup/unified/x", "freezer": "/sys/fs/cgroup/freezer/x"},
         "external_descriptors": ["/dev/null", "/var/log/app.log", "pipe:[123]"],
         "config": {"rootfs": "/bundles/app/rootfs",
           "labels": ["org.criu.config=%s", "bundle=/bundles/app"],
           "namespaces": [{"type": "NEWPID", "path": ""}, {"type": "NEWNET", "path": "%s"},
                          {"type": "NEWIPC", "path": "/proc/1/ns/ipc"}],
           "mounts": [{"device": "proc", "destination": "/proc"},
                      {"device": "bind", "source": "/srv/data", "destination": "/data"},
                      {"device": "cgroup", "destination": "/sys/fs/cgroup"}],
           "mask_paths": ["/proc/version", "/proc/sys", "/no/such/file"],
           "devices": [{"path": "/dev/null"}, {"path": "/dev/zero"}]}}
        """.formatted(self, configFile, netns);
    return Json.read(json, JsonNode.class);
  }

  @Test
  void lazyDumpAsksWhatRuncAsks() throws Exception {
    Path conf = Files.writeString(tmp.resolve("criu.conf"), "external mnt[/proc/acpi]:ferry-masked-proc-acpi\n");
    List<String> args = CriuDumpCommand.lazy(state(conf.toString(), "/proc/self/ns/net"), tmp.resolve("images"),
        tmp.resolve("work"), "10.0.0.1", 4321, 3);

    assertThat(args.subList(0, 4)).containsExactly("dump", "--no-default-config", "-t", Long.toString(self));
    assertThat(String.join(" ", args))
        .contains("-D " + tmp.resolve("images") + " -W " + tmp.resolve("work") + " -o dump.log -v4")
        .contains("--root /bundles/app/rootfs --manage-cgroups --tcp-established")
        .contains("--config " + conf)
        .contains("--freeze-cgroup /sys/fs/cgroup/freezer/x")
        .endsWith("--lazy-pages --address 10.0.0.1 --port 4321 --status-fd 3");
    String inode = Exec.checked("stat", "-L", "-c", "%i", "/proc/self/ns/net").stdout().strip();
    assertThat(args).containsSubsequence("--external", "net[" + inode + "]:extRootNetNS");
    assertThat(String.join(" ", args)).doesNotContain("ipc[").doesNotContain("pid[");
  }

  @Test
  void externalMountsComeInRuncsOrder() {
    List<MountInfo> mountInfo = MountInfo.parse(List.of(
        "117 116 0:29 /x /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu",
        "125 116 0:37 /x /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,name=systemd",
        "116 115 0:55 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755",
        "118 109 0:30 / /sys/fs/cgroupies rw - cgroup cgroup rw")); // not below /sys/fs/cgroup
    List<String[]> mounts = CriuDumpCommand.externalMounts(state("/none", "").path("config"), self, mountInfo);

    assertThat(mounts.stream().map(m -> m[0] + ":" + m[1]).toList()).containsExactly(
        "/data:/data",
        "/sys/fs/cgroup/cpu:/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/systemd:/sys/fs/cgroup/systemd",
        "/proc/version:/dev/null", // a masked file; the masked directory and the missing path are left alone
        "/dev/null:/dev/null",
        "/dev/zero:/dev/zero");
  }

  @Test
  void aCgroupNamespaceKeepsTheCgroupMountReal() throws Exception {
    JsonNode s = state("/none", "");
    ((com.fasterxml.jackson.databind.node.ArrayNode) s.path("config").path("namespaces"))
        .add(Json.MAPPER.createObjectNode().put("type", "NEWCGROUP").put("path", ""));
    List<String[]> mounts = CriuDumpCommand.externalMounts(s.path("config"), self,
        MountInfo.parse(List.of("117 116 0:29 /x /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu")));
    assertThat(mounts.stream().map(m -> m[0]).toList()).doesNotContain("/sys/fs/cgroup/cpu");
  }

  @Test
  void withoutItsConfigurationFileOrFreezerNeitherIsNamed() throws Exception {
    JsonNode s = state(tmp.resolve("absent.conf").toString(), "");
    ((com.fasterxml.jackson.databind.node.ObjectNode) s).set("cgroup_paths",
        Json.MAPPER.createObjectNode().put("", "/sys/fs/cgroup/pod/app"));
    List<String> args = CriuDumpCommand.lazy(s, tmp, tmp, "127.0.0.1", 1, 3);
    assertThat(args).doesNotContain("--config").doesNotContain("--external");
    assertThat(args).containsSubsequence("--freeze-cgroup", "/sys/fs/cgroup/pod/app"); // cgroup v2: the unified one
  }

  @Test
  void aStateWithoutItsInitProcessIsRefused() {
    JsonNode s = Json.read("{\"id\": \"gone\", \"config\": {}}", JsonNode.class);
    assertThatThrownBy(() -> CriuDumpCommand.lazy(s, tmp, tmp, "127.0.0.1", 1, 3))
        .isInstanceOf(IOException.class).hasMessageContaining("gone").hasMessageContaining("no init process");
  }

  @Test
  void descriptorsAreWrittenForRuncsRestoreReadableByRootOnly() throws Exception {
    CriuDumpCommand.writeDescriptors(state("/none", ""), tmp);
    Path file = tmp.resolve(CriuDumpCommand.DESCRIPTORS_FILE);
    assertThat(Json.read(Files.readString(file), List.class)).containsExactly("/dev/null", "/var/log/app.log", "pipe:[123]");
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-------");
  }
}
