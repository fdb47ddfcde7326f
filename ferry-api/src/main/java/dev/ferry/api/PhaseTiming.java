package dev.ferry.api;

/** When one phase started and ended, in ms since the migration started. */
public record PhaseTiming(String name, long startMs, long endMs) {}
