package dev.ferry.kubernetes;

import dev.ferry.kubernetes.model.MigrationPolicy;
import dev.ferry.kubernetes.model.NodeDrain;
import dev.ferry.kubernetes.model.PodMigration;
import io.fabric8.crdv2.generator.CRDGenerator;
import java.io.File;
import java.nio.file.Path;
import java.util.List;

/**
 * Writes the CustomResourceDefinitions of Ferry's resources, generated from their Java model
 * (the model is the source of truth; {@code deploy/crds} is its output, checked by a test).
 */
public final class CrdWriter {
  /** The resources, in the order their CRDs are written. */
  public static final List<Class<?>> RESOURCES = List.of(PodMigration.class, NodeDrain.class, MigrationPolicy.class);

  private CrdWriter() {}

  /** Generates every CRD into {@code dir} as {@code <plural>.<group>-v1.yml}. */
  @SuppressWarnings("unchecked")
  public static void write(Path dir) {
    dir.toFile().mkdirs();
    new CRDGenerator()
        .inOutputDir(new File(dir.toString()))
        .forCRDVersions("v1")
        .customResourceClasses(RESOURCES.toArray(new Class[0]))
        .generate();
  }

  /** {@code CrdWriter DIR}: (re)generates the CRDs into DIR (the build writes deploy/crds). */
  public static void main(String[] args) {
    write(Path.of(args.length > 0 ? args[0] : "deploy/crds"));
  }
}
