package dev.ferry.kubernetes;

import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectRulesReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.jdkhttp.JdkHttpClientFactory;
import io.fabric8.kubernetes.client.server.mock.KubernetesMixedDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.ServerRequest;
import io.fabric8.mockwebserver.ServerResponse;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;

/**
 * fabric8's mock API server in CRUD mode (it stores and watches what it is sent), started by
 * hand where the JUnit extension does not fit (several clients on one server, a benchmark),
 * with Ferry's CRDs from {@code deploy/crds/} installed. It grants every client the lease rights
 * JOSDK's leader election checks for.
 */
public final class MockApiServer implements AutoCloseable {
  private final KubernetesMockServer server;
  private final KubernetesClient client;

  private MockApiServer(KubernetesMockServer server) {
    this.server = server;
    this.client = newClient();
  }

  /** A fresh server over HTTPS, as the JUnit extension starts it, with the CRDs applied. */
  public static MockApiServer start() {
    return start(List.of("get", "create", "update"));
  }

  /** The same, with a service account that may do only {@code leaseVerbs} to leases. */
  public static MockApiServer start(List<String> leaseVerbs) {
    // expectations (below) and the CRUD store share the dispatcher: the expectations answer first
    Map<ServerRequest, Queue<ServerResponse>> expectations = new HashMap<>();
    KubernetesMockServer s = new KubernetesMockServer(new Context(Serialization.jsonMapper()), new MockWebServer(),
        expectations, new KubernetesMixedDispatcher(expectations), true);
    s.init();
    // JOSDK checks the lease rights before leader election; self-reviews are open to every account
    s.expect().post().withPath("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews").andReturn(201,
        new SelfSubjectRulesReviewBuilder().withNewStatus().withIncomplete(false).addNewResourceRule()
            .withApiGroups("coordination.k8s.io").withResources("leases").withVerbs(leaseVerbs)
            .endResourceRule().endStatus().build()).always();
    MockApiServer m = new MockApiServer(s);
    DeployedCrds.install(m.client);
    return m;
  }

  /** The client every test shares (closed with the server). */
  public KubernetesClient client() {
    return client;
  }

  /**
   * Another client of the same server, as a second controller process would have; the caller
   * closes it. JDK HTTP (JOSDK's own choice): with both fabric8 HTTP clients on the class path,
   * fabric8 would pick one at random.
   */
  public KubernetesClient newClient() {
    return server.createClient(new JdkHttpClientFactory());
  }

  @Override
  public void close() {
    client.close();
    server.destroy();
  }
}
