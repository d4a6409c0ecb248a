// packaging/kubernetes/billsync.yaml: parses (as the YAML subset it is written in), has one pod
// and one volume per firm, mounts the ConfigMap as the configuration and the Secret as the
// credential files, probes /healthz and /readyz, and its configuration validates with every
// credential it references present in the Secret.
#include <gtest/gtest.h>

#include <set>

#include "config/secret.hpp"
#include "daemon/app_config.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/packaging/packaging_support.hpp"
#include "tests/unit/packaging/yaml_subset.hpp"

namespace billsync::packaging {
namespace {

using testing::yaml_node;
using testing::yaml_subset_parser;

const std::vector<yaml_node>& manifest() {
    static const auto docs = yaml_subset_parser::parse(
        testing::read(testing::source_dir / "packaging" / "kubernetes" / "billsync.yaml"));
    return docs;
}

const yaml_node& document(const std::string& kind) {
    for (const auto& d : manifest()) {
        if (d.at("kind").value == kind) {
            return d;
        }
    }
    throw std::runtime_error("no " + kind);
}

const yaml_node& named(const yaml_node& seq, const std::string& name) {
    for (const auto& item : seq.seq) {
        if (item.at("name").value == name) {
            return item;
        }
    }
    throw std::runtime_error("nothing named " + name);
}

TEST(yaml_subset, reads_what_the_manifest_uses_and_refuses_the_rest) {
    const auto docs = yaml_subset_parser::parse(
        "a: 1  # comment\n"
        "b:\n"
        "  - x\n"
        "  - name: y\n"
        "    v: \"q: #r\"\n"
        "c: [d, \"e\"]\n"
        "f: |\n"
        "  line one\n"
        "\n"
        "  line two\n"
        "g: {}\n"
        "---\n"
        "h: i\n");
    ASSERT_EQ(docs.size(), 2U);
    EXPECT_EQ(docs[0].at("a").value, "1");
    EXPECT_EQ(docs[0].at("b").seq.at(0).value, "x");
    EXPECT_EQ(docs[0].at("b").seq.at(1).at("v").value, "q: #r");
    EXPECT_EQ(docs[0].at("c").seq.at(1).value, "e");
    EXPECT_EQ(docs[0].at("f").value, "line one\n\nline two\n");
    EXPECT_EQ(docs[0].at("g").type, yaml_node::kind::map);
    EXPECT_EQ(docs[1].at("h").value, "i");
    EXPECT_THROW(yaml_subset_parser::parse("a: 1\n   b: 2\n"), std::runtime_error);
    EXPECT_THROW(yaml_subset_parser::parse("a: 1\na: 2\n"), std::runtime_error);
    EXPECT_THROW(yaml_subset_parser::parse("a:\n\tb: 2\n"), std::runtime_error);
    EXPECT_THROW(yaml_subset_parser::parse("a: &anchor x\n"), std::runtime_error);
    EXPECT_THROW(yaml_subset_parser::parse("a:\nb: 1\n"), std::runtime_error);
}

TEST(kubernetes, the_manifest_is_a_statefulset_per_firm_with_its_config_and_secret) {
    std::set<std::string> kinds;
    for (const auto& d : manifest()) {
        kinds.insert(d.at("kind").value);
    }
    EXPECT_EQ(kinds, (std::set<std::string>{"ConfigMap", "Secret", "Service", "StatefulSet"}));

    const auto& sts = document("StatefulSet");
    EXPECT_EQ(sts.at("apiVersion").value, "apps/v1");
    const auto& spec = sts.at("spec");
    EXPECT_EQ(spec.at("replicas").value, "1");
    EXPECT_EQ(spec.at("serviceName").value, document("Service").path("metadata.name").value);
    // One volume per pod: the state.
    const auto& claims = spec.at("volumeClaimTemplates");
    ASSERT_EQ(claims.seq.size(), 1U);
    EXPECT_EQ(claims.seq[0].path("metadata.name").value, "state");
    EXPECT_EQ(claims.seq[0].path("spec.accessModes").seq.at(0).value, "ReadWriteOnce");

    const auto& pod = spec.path("template.spec");
    const auto& volumes = pod.at("volumes");
    EXPECT_EQ(named(volumes, "config").path("configMap.name").value,
              document("ConfigMap").path("metadata.name").value);
    EXPECT_EQ(named(volumes, "credentials").path("secret.secretName").value,
              document("Secret").path("metadata.name").value);
    EXPECT_EQ(spec.path("selector.matchLabels").at("app.kubernetes.io/instance").value,
              spec.path("template.metadata.labels").at("app.kubernetes.io/instance").value);
}

TEST(kubernetes, the_daemon_reads_the_mounted_config_and_credentials_and_is_probed) {
    const auto& pod = document("StatefulSet").path("spec.template.spec");
    const auto& init = named(pod.at("initContainers"), "validate");
    const auto& main = named(pod.at("containers"), "billsync");
    for (const auto* c : {&init, &main}) {
        const auto& args = c->at("args").seq;
        ASSERT_EQ(args.size(), 3U);
        EXPECT_EQ(args[1].value, "--config");
        EXPECT_EQ(args[2].value, "/etc/billsync/billsync.toml");
        EXPECT_EQ(named(c->at("volumeMounts"), "config").at("mountPath").value, "/etc/billsync");
        const auto credentials = named(c->at("volumeMounts"), "credentials").at("mountPath").value;
        EXPECT_EQ(named(c->at("env"), "CREDENTIALS_DIRECTORY").at("value").value, credentials);
        EXPECT_EQ(named(c->at("volumeMounts"), "state").at("mountPath").value, "/var/lib/billsync");
    }
    EXPECT_EQ(init.at("args").seq[0].value, "validate");
    EXPECT_EQ(main.at("args").seq[0].value, "run");
    EXPECT_EQ(main.path("livenessProbe.httpGet.path").value, "/healthz");
    EXPECT_EQ(main.path("startupProbe.httpGet.path").value, "/healthz");
    EXPECT_EQ(main.path("readinessProbe.httpGet.path").value, "/readyz");
    EXPECT_EQ(main.path("readinessProbe.httpGet.port").value, "status");
    EXPECT_EQ(named(main.at("ports"), "status").at("containerPort").value, "8081");
    EXPECT_EQ(named(main.at("ports"), "webhooks").at("containerPort").value, "8080");
}

TEST(kubernetes, the_configmaps_configuration_validates_and_its_secrets_are_in_the_secret) {
    const auto toml = document("ConfigMap").at("data").at("billsync.toml").value;
    std::set<std::string> keys;
    for (const auto& [k, v] : document("Secret").at("stringData").map) {
        keys.insert(k);
    }
    EXPECT_EQ(testing::credentials_referenced(toml), keys);

    const billsync::testing::temp_dir dir;
    billsync::testing::write_file(dir / "billsync.toml", toml);
    config::diagnostics diags;
    const config::secret_syntax_only syntax_only;
    const auto cfg = daemon::load_app_config(dir / "billsync.toml", diags);
    ASSERT_TRUE(cfg) << diags.render();
    EXPECT_FALSE(diags.has_errors()) << diags.render();
    EXPECT_EQ(cfg->daemon().data_dir, "/var/lib/billsync");
    EXPECT_EQ(cfg->daemon().status.address.text(), "0.0.0.0:8081");
    EXPECT_EQ(cfg->daemon().webhook.address.text(), "0.0.0.0:8080");
    EXPECT_TRUE(cfg->workflow_settings.contains("followup"));
}

}  // namespace
}  // namespace billsync::packaging
