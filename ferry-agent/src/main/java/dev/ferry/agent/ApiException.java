package dev.ferry.agent;

/** An API error with the HTTP status to answer and a message that says what to do. */
public class ApiException extends RuntimeException {
  private final int status;

  public ApiException(int status, String message) {
    super(message);
    this.status = status;
  }

  public int status() {
    return status;
  }

  public static ApiException notFound(String message) {
    return new ApiException(404, message);
  }

  public static ApiException conflict(String message) {
    return new ApiException(409, message);
  }

  public static ApiException badRequest(String message) {
    return new ApiException(400, message);
  }
}
