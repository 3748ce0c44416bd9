"""Java application output: Spring Boot 3 console logs and Open Liberty, with stack traces.

Stack traces are the reason this module exists: on a node every frame (`\\tat ...`),
`Caused by:` and `... N more` line is its own log line, so a shipper sees dozens of records
per exception and must not lose or reorder them. Traces are assembled from real-looking
application frames on top of the Tomcat/Spring frames every servlet request passes through.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

from shipper.demo.content.base import Line, LineSource, WeightedTable, iso_ms, second_fields
from shipper.demo.topology import Cluster, Container, Pod

_SPRING_FRAMES: Final = (
    "org.springframework.web.method.support.InvocableHandlerMethod.doInvoke(InvocableHandlerMethod.java:255)",
    "org.springframework.web.method.support.InvocableHandlerMethod.invokeForRequest(InvocableHandlerMethod.java:188)",
    "org.springframework.web.servlet.mvc.method.annotation.ServletInvocableHandlerMethod.invokeAndHandle(ServletInvocableHandlerMethod.java:118)",
    "org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerAdapter.invokeHandlerMethod(RequestMappingHandlerAdapter.java:926)",
    "org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerAdapter.handleInternal(RequestMappingHandlerAdapter.java:831)",
    "org.springframework.web.servlet.mvc.method.AbstractHandlerMethodAdapter.handle(AbstractHandlerMethodAdapter.java:87)",
    "org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1089)",
    "org.springframework.web.servlet.DispatcherServlet.doService(DispatcherServlet.java:979)",
    "org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:1014)",
    "org.springframework.web.servlet.FrameworkServlet.doPost(FrameworkServlet.java:914)",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:590)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)",
    "org.apache.catalina.core.ApplicationFilterChain.internalDoFilter(ApplicationFilterChain.java:195)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:140)",
    "org.apache.tomcat.websocket.server.WsFilter.doFilter(WsFilter.java:51)",
    "org.springframework.web.filter.RequestContextFilter.doFilterInternal(RequestContextFilter.java:100)",
    "org.springframework.web.filter.OncePerRequestFilter.doFilter(OncePerRequestFilter.java:116)",
    "org.springframework.web.filter.CharacterEncodingFilter.doFilterInternal(CharacterEncodingFilter.java:201)",
    "org.apache.catalina.core.StandardWrapperValve.invoke(StandardWrapperValve.java:167)",
    "org.apache.catalina.core.StandardContextValve.invoke(StandardContextValve.java:90)",
    "org.apache.catalina.authenticator.AuthenticatorBase.invoke(AuthenticatorBase.java:482)",
    "org.apache.catalina.core.StandardHostValve.invoke(StandardHostValve.java:115)",
    "org.apache.catalina.valves.ErrorReportValve.invoke(ErrorReportValve.java:93)",
    "org.apache.catalina.core.StandardEngineValve.invoke(StandardEngineValve.java:74)",
    "org.apache.catalina.connector.CoyoteAdapter.service(CoyoteAdapter.java:344)",
    "org.apache.coyote.http11.Http11Processor.service(Http11Processor.java:391)",
    "org.apache.coyote.AbstractProcessorLight.process(AbstractProcessorLight.java:63)",
    "org.apache.coyote.AbstractProtocol$ConnectionHandler.process(AbstractProtocol.java:896)",
    "org.apache.tomcat.util.net.NioEndpoint$SocketProcessor.doRun(NioEndpoint.java:1744)",
    "org.apache.tomcat.util.net.SocketProcessorBase.run(SocketProcessorBase.java:52)",
    "org.apache.tomcat.util.threads.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1191)",
    "org.apache.tomcat.util.threads.ThreadPoolExecutor$Worker.run(ThreadPoolExecutor.java:659)",
    "org.apache.tomcat.util.threads.TaskThread$WrappingRunnable.run(TaskThread.java:63)",
    "java.base/java.lang.Thread.run(Thread.java:1583)",
)
_REFLECTION_FRAMES: Final = (
    "java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)",
    "java.base/java.lang.reflect.Method.invoke(Method.java:580)",
)

# (exception header, application frames (top first), optional cause with its own frames)
_Trace = tuple[str, tuple[str, ...], tuple[str, tuple[str, ...]] | None]
_ORDER_TRACES: Final[tuple[_Trace, ...]] = (
    (
        "org.springframework.web.client.ResourceAccessException: I/O error on GET request for "
        '"http://catalog.shop.svc.cluster.local:8080/api/v1/items/{sku}": Read timed out',
        (
            "org.springframework.web.client.RestTemplate.createResourceAccessException(RestTemplate.java:915)",
            "org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:895)",
            "org.springframework.web.client.RestTemplate.execute(RestTemplate.java:790)",
            "org.springframework.web.client.RestTemplate.getForObject(RestTemplate.java:380)",
            "com.example.shop.orders.catalog.CatalogClient.item(CatalogClient.java:64)",
            "com.example.shop.orders.service.OrderService.priceLines(OrderService.java:171)",
            "com.example.shop.orders.service.OrderService.placeOrder(OrderService.java:98)",
            "com.example.shop.orders.web.OrderController.create(OrderController.java:57)",
        ),
        (
            "java.net.SocketTimeoutException: Read timed out",
            (
                "java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:278)",
                "java.base/sun.nio.ch.NioSocketImpl.implRead(NioSocketImpl.java:304)",
                "java.base/sun.nio.ch.NioSocketImpl.read(NioSocketImpl.java:346)",
                "java.base/java.net.Socket$SocketInputStream.read(Socket.java:1099)",
                "java.base/java.io.BufferedInputStream.fill(BufferedInputStream.java:291)",
                "java.base/sun.net.www.http.HttpClient.parseHTTPHeader(HttpClient.java:827)",
                "java.base/sun.net.www.protocol.http.HttpURLConnection.getInputStream0(HttpURLConnection.java:1705)",
            ),
        ),
    ),
    (
        "java.lang.IllegalStateException: Inventory reservation failed for {sku}: "
        "requested {qty}, available 0",
        (
            "com.example.shop.orders.inventory.InventoryService.reserve(InventoryService.java:88)",
            "com.example.shop.orders.service.OrderService.placeOrder(OrderService.java:112)",
            "com.example.shop.orders.web.OrderController.create(OrderController.java:57)",
        ),
        None,
    ),
    (
        "org.springframework.dao.DataIntegrityViolationException: could not execute statement "
        '[ERROR: duplicate key value violates unique constraint "orders_idempotency_key_key"]',
        (
            "org.springframework.orm.jpa.vendor.HibernateJpaDialect.convertHibernateAccessException(HibernateJpaDialect.java:290)",
            "org.springframework.orm.jpa.vendor.HibernateJpaDialect.translateExceptionIfPossible(HibernateJpaDialect.java:241)",
            "org.springframework.dao.support.PersistenceExceptionTranslationInterceptor.invoke(PersistenceExceptionTranslationInterceptor.java:137)",
            "com.example.shop.orders.repo.OrderRepository$$SpringCGLIB$$0.save(<generated>)",
            "com.example.shop.orders.service.OrderService.placeOrder(OrderService.java:131)",
            "com.example.shop.orders.web.OrderController.create(OrderController.java:57)",
        ),
        (
            "org.postgresql.util.PSQLException: ERROR: duplicate key value violates unique "
            'constraint "orders_idempotency_key_key"',
            (
                "org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2725)",
                "org.postgresql.core.v3.QueryExecutorImpl.processResults(QueryExecutorImpl.java:2412)",
                "org.postgresql.core.v3.QueryExecutorImpl.execute(QueryExecutorImpl.java:371)",
                "org.postgresql.jdbc.PgStatement.executeInternal(PgStatement.java:502)",
                "com.zaxxer.hikari.pool.HikariProxyPreparedStatement.executeUpdate(HikariProxyPreparedStatement.java)",
            ),
        ),
    ),
    (
        'java.lang.NullPointerException: Cannot invoke "com.example.shop.orders.model.Address.'
        'getCountry()" because "customer.shippingAddress" is null',
        (
            "com.example.shop.orders.shipping.ShippingCalculator.quote(ShippingCalculator.java:41)",
            "com.example.shop.orders.service.OrderService.placeOrder(OrderService.java:104)",
            "com.example.shop.orders.web.OrderController.create(OrderController.java:57)",
        ),
        None,
    ),
)
_THREADS: Final = tuple(f"nio-8080-exec-{i}" for i in range(1, 11))
_CONTROLLER: Final = "c.e.shop.orders.web.OrderController"
_INFO_LOGGERS: Final = (
    (_CONTROLLER, "Creating order for customer c-{cust} with {qty} items"),
    ("c.e.shop.orders.service.OrderService", "Order ord-{oid} persisted in {ms} ms"),
    ("c.e.s.o.inventory.InventoryService", "Reserved {qty} units of {sku} for order ord-{oid}"),
    ("c.e.s.orders.payment.PaymentGateway", "Payment authorized for order ord-{oid}: {amt} EUR"),
    (_CONTROLLER, "Order ord-{oid} fetched for customer c-{cust}"),
)
_WARN_LINES: Final = (
    (
        "com.zaxxer.hikari.pool.HikariPool",
        "HikariPool-1 - Thread starvation or clock leap detected (housekeeper delta=1m{ms}ms).",
    ),
    (
        "c.e.s.orders.payment.PaymentGateway",
        "Payment provider responded slowly: {ms} ms (threshold 500 ms)",
    ),
    ("o.h.engine.jdbc.spi.SqlExceptionHelper", "SQL Error: 0, SQLState: 23505"),
)


def _fill(template: str, r: random.Random) -> str:
    if "{" not in template:
        return template
    return template.format(
        sku=f"sku-{r.randrange(10**5):05d}",
        qty=r.randint(1, 6),
        oid=f"{r.randrange(10**7):07d}",
        cust=f"{r.randrange(10**5):05d}",
        ms=r.randint(3, 900),
        amt=f"{r.randint(5, 900)}.{r.randrange(100):02d}",
    )


def _stack(r: random.Random, trace: _Trace, stream: str, omitted_word: str) -> list[Line]:
    header, frames, cause = trace
    lines: list[Line] = [(stream, _fill(header, r))]
    lines += [(stream, f"\tat {f}") for f in frames]
    lines += [(stream, f"\tat {f}") for f in _REFLECTION_FRAMES]
    lines += [(stream, f"\tat {f}") for f in _SPRING_FRAMES]
    if cause is not None:
        c_header, c_frames = cause
        lines.append((stream, f"Caused by: {_fill(c_header, r)}"))
        lines += [(stream, f"\tat {f}") for f in c_frames]
        shared = len(frames) + len(_REFLECTION_FRAMES) + len(_SPRING_FRAMES)
        lines.append((stream, f"\t... {shared} {omitted_word}"))
    return lines


class SpringBootSource(LineSource):
    """A Spring Boot 3 service (`orders`): logback console lines plus exception traces."""

    def __init__(self, rng: random.Random, cluster: Cluster, pod: Pod, container: Container):
        super().__init__(rng, cluster, pod, container)
        self.app = container.name
        self.kinds: WeightedTable[Callable[[int], Line | list[Line]]] = WeightedTable(
            [
                (self._info, 85.0),
                (self._warn, 8.0),
                (self._logged_error, 3.0),
                (self._uncaught, 1.0),
            ]
        )

    def _prefix(self, t_ns: int, level: str, logger: str, thread: str | None = None) -> str:
        thread = thread or self.rng.choice(_THREADS)
        return f"{iso_ms(t_ns)} {level:>5} 1 --- [{self.app}] [{thread:>15}] {logger:<40} :"

    def event(self, t_ns: int) -> Line | list[Line]:
        return self.kinds.pick(self.rng)(t_ns)

    def _info(self, t_ns: int) -> Line:
        logger, msg = self.rng.choice(_INFO_LOGGERS)
        return "stdout", f"{self._prefix(t_ns, 'INFO', logger)} {_fill(msg, self.rng)}"

    def _warn(self, t_ns: int) -> Line:
        logger, msg = self.rng.choice(_WARN_LINES)
        return "stdout", f"{self._prefix(t_ns, 'WARN', logger)} {_fill(msg, self.rng)}"

    def _logged_error(self, t_ns: int) -> list[Line]:
        r = self.rng
        trace = r.choice(_ORDER_TRACES)
        head = (
            f"{self._prefix(t_ns, 'ERROR', 'o.a.c.c.C.[.[.[/].[dispatcherServlet]')} "
            "Servlet.service() for servlet [dispatcherServlet] in context with path [] threw "
            "exception [Request processing failed: "
            f"{_fill(trace[0], r).split(': ', 1)[0]}] with root cause"
        )
        return [("stdout", head), *_stack(r, trace, "stdout", "common frames omitted")]

    def _uncaught(self, t_ns: int) -> list[Line]:
        # Background threads without a handler print through the JVM's default handler to stderr.
        r = self.rng
        trace = r.choice(_ORDER_TRACES)
        lines = _stack(r, trace, "stderr", "more")
        stream, header = lines[0]
        lines[0] = (stream, f'Exception in thread "scheduling-1" {header}')
        return lines

    def long_line(self, t_ns: int, blob: str) -> Line:
        prefix = self._prefix(t_ns, "DEBUG", "o.s.web.client.RestTemplate")
        return "stdout", f'{prefix} Writing [{{"cartId":"{blob}"}}] as "application/json"'

    def non_ascii_line(self, t_ns: int) -> Line:
        r = self.rng
        name = r.choice(("Łukasz Żółć", "José Müller", "Søren Ærø", "Zoë Côté"))
        prefix = self._prefix(t_ns, "INFO", _CONTROLLER)
        return "stdout", f"{prefix} Order ord-{r.randrange(10**7):07d} for {name} → Zürich 🚚"


_LIBERTY_MSGS: Final = WeightedTable(
    [
        (("INFO", "reviews: fetched ratings for product {pid} in {ms} ms"), 45.0),
        (("INFO", "reviews: returning {n} reviews for product {pid}"), 45.0),
        (("WARNING", "reviews: ratings service slow: {ms} ms for product {pid}"), 6.0),
        (
            (
                "INFO",
                "SRVE0242I: [reviews-app] [/] [application.rest.LibertyRestEndpoint]: "
                "Initialization successful.",
            ),
            1.0,
        ),
        (
            ("AUDIT", "CWWKT0016I: Web application available (default_host): http://{host}:9080/"),
            1.0,
        ),
        (("AUDIT", "CWWKZ0001I: Application reviews-app started in {sec} seconds."), 1.0),
    ]
)
_LIBERTY_TRACE: Final = (
    "javax.ws.rs.ProcessingException: java.net.ConnectException: Connection refused",
    (
        "org.apache.cxf.jaxrs.client.AbstractClient.checkClientException(AbstractClient.java:640)",
        "org.apache.cxf.jaxrs.client.AbstractClient.preProcessResult(AbstractClient.java:614)",
        "org.apache.cxf.jaxrs.client.WebClient.doResponse(WebClient.java:1115)",
        "org.apache.cxf.jaxrs.client.WebClient.doChainedInvocation(WebClient.java:1052)",
        "org.apache.cxf.jaxrs.client.WebClient.doInvoke(WebClient.java:897)",
        "org.apache.cxf.jaxrs.client.WebClient$SyncInvokerImpl.get(WebClient.java:1613)",
        "application.rest.LibertyRestEndpoint.getRatings(LibertyRestEndpoint.java:117)",
        "application.rest.LibertyRestEndpoint.bookReviewsById(LibertyRestEndpoint.java:148)",
        "sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)",
        "com.ibm.ws.webcontainer.servlet.ServletWrapper.service(ServletWrapper.java:1258)",
        "com.ibm.ws.webcontainer.webapp.WebApp.handleRequest(WebApp.java:5006)",
        "com.ibm.ws.http.dispatcher.internal.channel.HttpDispatcherLink$TaskWrapper.run(HttpDispatcherLink.java:1160)",
        "com.ibm.ws.threading.internal.ExecutorServiceImpl$RunnableWrapper.run(ExecutorServiceImpl.java:239)",
        "java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1149)",
        "java.lang.Thread.run(Thread.java:748)",
    ),
)


class LibertySource(LineSource):
    """Bookinfo `reviews` on Open Liberty: `[LEVEL   ] msg` lines, `[err]`-prefixed traces."""

    def event(self, t_ns: int) -> Line | list[Line]:
        r = self.rng
        if r.random() < 0.02:
            header, frames = _LIBERTY_TRACE
            return [("stderr", f"[err] {header}")] + [("stderr", f"[err] \tat {f}") for f in frames]
        level, msg = _LIBERTY_MSGS.pick(r)
        text = msg.format(
            pid=r.randrange(10),
            ms=r.randint(2, 900),
            n=2,
            host=self.pod.name,
            sec=f"{r.randint(2, 9)}.{r.randrange(1000):03d}",
        )
        return "stdout", f"[{level:<8}] {text}"

    def long_line(self, t_ns: int, blob: str) -> Line:
        return "stdout", f'[INFO    ] reviews: ratings response body {{"id":0,"trace":"{blob}"}}'

    def non_ascii_line(self, t_ns: int) -> Line:
        y, m, d, hh, mm, ss, _ = second_fields(t_ns)
        return "stdout", (
            f"[INFO    ] reviews: review by Renée Ødegård at {y}-{m}-{d} {hh}:{mm}:{ss}: "
            "« Très bien écrit » ⭐⭐⭐⭐"
        )
