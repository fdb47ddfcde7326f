package dev.ferry.kubernetes.bench;

import io.javaoperatorsdk.operator.api.monitoring.Metrics;
import java.util.concurrent.atomic.AtomicLong;

/** Counts the calls JOSDK makes into one controller's {@code reconcile}, through its metrics hook. */
final class ReconcileCounter implements Metrics {
  private final String controller;
  private final AtomicLong reconciles = new AtomicLong();

  ReconcileCounter(String controller) {
    this.controller = controller;
  }

  @Override
  public <T> T timeControllerExecution(ControllerExecution<T> execution) throws Exception {
    if ("reconcile".equals(execution.name()) && controller.equals(execution.controllerName())) {
      reconciles.incrementAndGet();
    }
    return execution.execute();
  }

  long reconciles() {
    return reconciles.get();
  }
}
