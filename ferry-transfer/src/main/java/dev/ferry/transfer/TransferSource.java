package dev.ferry.transfer;

import java.nio.file.Path;

/**
 * One directory tree to send, and the name it gets on the other side.
 *
 * @param dir local directory
 * @param as relative path it lands at under the receiver's root, e.g. "images/app"
 */
public record TransferSource(Path dir, String as) {}
