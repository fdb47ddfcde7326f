package dev.ferry.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.api.ContainerSpec;
import dev.ferry.api.PodIdentity;
import dev.ferry.api.PodSpec;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class NamesTest {
  @ParameterizedTest
  @ValueSource(strings = {"../etc", "a/b", "Redis", "x;rm -rf /", "-a", "a-", "", "$(id)", "a b",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})
  void hostileOrMalformedNamesAreRefused(String name) {
    assertThatThrownBy(() -> Names.check("pod", name)).isInstanceOf(ApiException.class).hasMessageContaining("invalid");
  }

  @ParameterizedTest
  @ValueSource(strings = {"redis", "a", "web-1", "x9"})
  void ordinaryNamesPass(String name) {
    assertThat(Names.check("pod", name)).isEqualTo(name);
  }

  @Test
  void migrationIdsCannotEscapeTheStateDirectory() {
    assertThatThrownBy(() -> Names.checkId("..")).isInstanceOf(ApiException.class);
    assertThatThrownBy(() -> Names.checkId("a/b")).isInstanceOf(ApiException.class);
    assertThat(Names.checkId("m-20261127-114201-10f8")).isEqualTo("m-20261127-114201-10f8");
  }

  @Test
  void podSpecsAreValidated() {
    PodIdentity id = new PodIdentity("u", "p", "10.77.1.2", 16, "02:fe:0a:4d:01:02");
    ContainerSpec c = new ContainerSpec("app", List.of("sleep", "1"), List.of());
    assertThatThrownBy(() -> PodManager.validate(new PodSpec(id, List.of(), 64, 0))).hasMessageContaining("no containers");
    assertThatThrownBy(() -> PodManager.validate(new PodSpec(id, List.of(c, c), 64, 0))).hasMessageContaining("appears twice");
    assertThatThrownBy(() -> PodManager.validate(new PodSpec(id,
        List.of(new ContainerSpec("pause", List.of("x"), List.of())), 64, 0))).hasMessageContaining("reserved");
    assertThatThrownBy(() -> PodManager.validate(new PodSpec(id, List.of(c), 1, 0))).hasMessageContaining("out of range");
    PodManager.validate(new PodSpec(id, List.of(c), 64, 0));
  }
}
