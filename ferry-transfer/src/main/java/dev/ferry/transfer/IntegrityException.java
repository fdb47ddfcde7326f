package dev.ferry.transfer;

import java.io.IOException;

/** Received data does not match its checksum; nothing from this transfer may be used. */
public class IntegrityException extends IOException {
  public IntegrityException(String message) {
    super(message);
  }
}
