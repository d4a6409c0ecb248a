#include "workflows/followup/settings.hpp"

#include <array>
#include <variant>

namespace billsync::workflows::followup {

namespace {

struct default_text {
    std::string_view id;
    std::string_view part;
    std::string_view text;
};

// clang-format off
constexpr std::array<default_text, 46> defaults = {{
    {"standard.touch1", "email_subject", "Invoice {invoice_number} from {firm_name} is past due"},
    {"standard.touch1", "email_body",
     "Dear {client_name},\n\nThis is a friendly reminder that invoice {invoice_number} for "
     "{amount} was due on {due_date}. The balance of {balance} is now {days_overdue_text} past "
     "due.\n\nIf you have already paid, please disregard this message. Questions? Call us at "
     "{firm_phone}.\n\nThank you,\n{firm_name}\n"},
    // The touch emails for an invoice that has an online payment link ({payment_link}): the
    // default when the email_body is not configured and the invoice carries a link.
    {"standard.touch1+link", "email_body",
     "Dear {client_name},\n\nThis is a friendly reminder that invoice {invoice_number} for "
     "{amount} was due on {due_date}. The balance of {balance} is now {days_overdue_text} past "
     "due.\n\nPay online: {payment_link}\n\nIf you have already paid, please disregard this "
     "message. Questions? Call us at {firm_phone}.\n\nThank you,\n{firm_name}\n"},
    {"standard.touch2+link", "email_body",
     "Dear {client_name},\n\nOur records show that invoice {invoice_number}, due on {due_date}, "
     "still has a balance of {balance}, now {days_overdue_text} past due.\n\nPay online: "
     "{payment_link}\n\nPlease call us at {firm_phone} if you have any questions.\n\nThank "
     "you,\n{firm_name}\n"},
    {"standard.touch3+link", "email_body",
     "Dear {client_name},\n\nInvoice {invoice_number}, due on {due_date}, still has a balance "
     "of {balance}. As it is now {days_overdue_text} past due, we have placed your account on "
     "hold until it is settled.\n\nPay online: {payment_link}\n\nPlease call us at "
     "{firm_phone}.\n\n{firm_name}\n"},
    {"retainer.touch1+link", "email_body",
     "Dear {client_name},\n\nA quick reminder that your retainer invoice {invoice_number} for "
     "{amount} was due on {due_date}.\n\nPay online: {payment_link}\n\nIf you have already "
     "paid, please disregard this message.\n\nThank you,\n{firm_name}\n"},
    {"retainer.touch2+link", "email_body",
     "Dear {client_name},\n\nInvoice {invoice_number}, due on {due_date}, still shows a balance "
     "of {balance}.\n\nPay online: {payment_link}\n\nPlease call us at {firm_phone} if "
     "anything needs attention.\n\nThank you,\n{firm_name}\n"},
    {"retainer.touch3+link", "email_body",
     "Dear {client_name},\n\nInvoice {invoice_number} still shows a balance of {balance}.\n\n"
     "Pay online: {payment_link}\n\nPlease call us at {firm_phone}.\n\n{firm_name}\n"},
    {"standard.touch1", "sms_body",
     "{firm_name}: invoice {invoice_number} ({balance}) is past due."},
    {"standard.touch1", "task_title", "Follow up on invoice {invoice_number} for {client_name}"},
    {"standard.touch1", "task_body",
     "Invoice {invoice_number}: {balance} is {days_overdue_text} past due."},
    {"standard.touch2", "email_subject",
     "Second notice: invoice {invoice_number} is {days_overdue_text} past due"},
    {"standard.touch2", "email_body",
     "Dear {client_name},\n\nOur records show that invoice {invoice_number}, due on {due_date}, "
     "still has a balance of {balance}, now {days_overdue_text} past due.\n\nPlease call "
     "us at {firm_phone} if you have any questions.\n\nThank you,\n"
     "{firm_name}\n"},
    {"standard.touch2", "sms_body",
     "{firm_name}: invoice {invoice_number} has {balance} outstanding, {days_overdue_text} past "
     "due. Reply STOP to opt out."},
    {"standard.touch3", "email_subject",
     "Account on hold: invoice {invoice_number} is {days_overdue_text} past due"},
    {"standard.touch3", "email_body",
     "Dear {client_name},\n\nInvoice {invoice_number}, due on {due_date}, still has a balance "
     "of {balance}. As it is now {days_overdue_text} past due, we have placed your account on "
     "hold until it is settled.\n\nPlease call us at {firm_phone}.\n\n"
     "{firm_name}\n"},
    {"standard.touch3", "task_title", "Account hold: {client_name} - Invoice {invoice_number}"},
    {"standard.touch3", "task_body",
     "Invoice {invoice_number} for {client_name} has {balance} outstanding, {days_overdue_text} "
     "past due. The account-hold notice has been sent; please follow up personally."},
    {"retainer.touch1", "email_subject", "A reminder about invoice {invoice_number}"},
    {"retainer.touch1", "email_body",
     "Dear {client_name},\n\nA quick reminder that your retainer invoice {invoice_number} for "
     "{amount} was due on {due_date}.\n\nIf you have "
     "already paid, please disregard this message.\n\nThank you,\n{firm_name}\n"},
    // Retainer touch 1 with the auto-pay enrollment offer: the default when [followup]
    // autopay_link is set.
    {"retainer.touch1+autopay", "email_body",
     "Dear {client_name},\n\nA quick reminder that your retainer invoice {invoice_number} for "
     "{amount} was due on {due_date}.\n\nIf you have already paid, please disregard this "
     "message.\n\nNever miss a retainer payment: enroll in auto-pay at {autopay_link} and each "
     "invoice is paid on its due date.\n\nThank you,\n{firm_name}\n"},
    {"retainer.touch1", "sms_body",
     "{firm_name}: a reminder about invoice {invoice_number} ({balance})."},
    {"retainer.touch2", "email_subject", "Invoice {invoice_number}: balance of {balance}"},
    {"retainer.touch2", "email_body",
     "Dear {client_name},\n\nInvoice {invoice_number}, due on {due_date}, still shows a balance "
     "of {balance}. Please call us "
     "at {firm_phone} if anything needs attention.\n\nThank you,\n{firm_name}\n"},
    {"retainer.touch2", "sms_body",
     "{firm_name}: invoice {invoice_number} still shows {balance} due. "
     "Reply STOP to opt out."},
    {"retainer.touch3", "email_subject", "Invoice {invoice_number}: balance of {balance}"},
    {"retainer.touch3", "email_body",
     "Dear {client_name},\n\nInvoice {invoice_number} still shows a balance of {balance}. "
     "Please call us at {firm_phone}.\n\n{firm_name}\n"},
    {"retainer.touch3", "task_title",
     "Retainer follow-up: {client_name} - Invoice {invoice_number}"},
    {"retainer.touch3", "task_body",
     "Retainer invoice {invoice_number} for {client_name} has {balance} outstanding, "
     "{days_overdue_text} past due. Please reach out personally."},
    {"standard.reminder", "email_subject",
     "Invoice {invoice_number} from {firm_name} is due on {due_date}"},
    {"standard.reminder", "email_body",
     "Dear {client_name},\n\nA courtesy reminder that invoice {invoice_number} for {balance} is "
     "due on {due_date}.\n\nIf you have already paid, please "
     "disregard this message. Questions? Call us at {firm_phone}.\n\nThank you,\n{firm_name}\n"},
    {"standard.reminder", "sms_body",
     "{firm_name}: invoice {invoice_number} ({balance}) is due on {due_date}."},
    {"retainer.reminder", "email_subject",
     "Your retainer invoice {invoice_number} is due on {due_date}"},
    {"retainer.reminder", "email_body",
     "Dear {client_name},\n\nA courtesy reminder that your retainer invoice {invoice_number} for "
     "{balance} is due on {due_date}.\n\nThank you,\n{firm_name}\n"},
    {"retainer.reminder", "sms_body",
     "{firm_name}: retainer invoice {invoice_number} ({balance}) is due on {due_date}."},
    {"payment_plan.reminder", "email_subject",
     "Your installment of {amount} is due on {due_date}"},
    {"payment_plan.reminder", "email_body",
     "Dear {client_name},\n\nA reminder that the next installment of your payment plan, "
     "{amount}, is due on {due_date}.\n\nThank you,\n{firm_name}\n"},
    {"payment_plan.missed", "email_subject",
     "We have not received your installment of {amount} due on {due_date}"},
    {"payment_plan.missed", "email_body",
     "Dear {client_name},\n\nWe have not yet received the installment of {amount} that was due "
     "on {due_date} under your payment plan. Please call us at {firm_phone} if anything has "
     "changed.\n\nThank you,\n{firm_name}\n"},
    {"payment_plan.missed", "task_title",
     "Missed installment: {client_name} - {amount} due {due_date}"},
    {"payment_plan.missed", "task_body",
     "{client_name} has not paid the installment of {amount} due on {due_date} (open balance "
     "{balance}). The missed-installment notice has been sent; please follow up personally."},
    {"partial_payment", "email_subject", "Payment received for invoice {invoice_number}"},
    {"partial_payment", "email_body",
     "Dear {client_name},\n\nThank you for your payment toward invoice {invoice_number}. The "
     "remaining balance is {balance}.\n\n"
     "Thank you,\n{firm_name}\n"},
    {"partial_payment", "sms_body",
     "{firm_name}: payment received, thank you. Invoice {invoice_number} balance: {balance}."},
    {"dispute", "task_title",
     "Billing dispute \u2014 {client_name} \u2014 Invoice {invoice_number}"},
    {"dispute", "task_body",
     "{client_name} replied to a reminder about invoice {invoice_number} ({balance} "
     "outstanding) with what looks like a dispute. The follow-up is paused; resume it with "
     "'billsync followup resume' once resolved."},
}};
// clang-format on

message_template compile(std::string_view text) {
    auto parsed = message_template::parse(text);
    if (auto* t = std::get_if<message_template>(&parsed)) {
        return std::move(*t);
    }
    return {};  // the defaults are tested to parse
}

touch_templates default_templates(std::string_view id) {
    touch_templates t;
    t.email_subject = compile(default_template_text(id, "email_subject"));
    t.email_body = compile(default_template_text(id, "email_body"));
    t.email_body_with_link = compile(default_link_text(id, "email_body"));
    t.sms_body = compile(default_template_text(id, "sms_body"));
    t.task_title = compile(default_template_text(id, "task_title"));
    t.task_body = compile(default_template_text(id, "task_body"));
    return t;
}

}  // namespace

std::string_view to_string(client_class c) noexcept {
    return c == client_class::retainer ? "retainer" : "standard";
}

std::string template_id(client_class c, std::size_t touch) {
    return std::string(to_string(c)) + ".touch" + std::to_string(touch);
}

std::string reminder_template_id(client_class c) { return std::string(to_string(c)) + ".reminder"; }

std::string_view default_template_text(std::string_view id,
                                       std::string_view part,
                                       bool with_autopay_link) {
    if (with_autopay_link) {
        const auto offer = std::string(id) + "+autopay";
        for (const auto& d : defaults) {
            if (d.id == offer && d.part == part) {
                return d.text;
            }
        }
    }
    return default_template_text(id, part);
}

std::string_view default_link_text(std::string_view id, std::string_view part) {
    return default_template_text(std::string(id) + "+link", part);
}

std::string_view default_template_text(std::string_view id, std::string_view part) {
    for (const auto& d : defaults) {
        if (d.id == id && d.part == part) {
            return d.text;
        }
    }
    return {};
}

settings default_settings() {
    settings s;
    s.cadences[client_class::standard] = {
        {.day = 1, .email = true},
        {.day = 15, .email = true, .sms = true},
        {.day = 30, .email = true, .task = true, .hold = true},
    };
    s.cadences[client_class::retainer] = {
        {.day = 5, .email = true},
        {.day = 20, .email = true, .sms = true},
        {.day = 35, .task = true},
    };
    for (const auto c : {client_class::standard, client_class::retainer}) {
        for (std::size_t i = 1; i <= 3; ++i) {
            const auto id = template_id(c, i);
            s.touches.emplace(id, default_templates(id));
        }
        const auto reminder = reminder_template_id(c);
        s.touches.emplace(reminder, default_templates(reminder));
    }
    s.partial_payment = default_templates("partial_payment");
    s.plan_reminder = default_templates("payment_plan.reminder");
    s.plan_missed = default_templates("payment_plan.missed");
    s.dispute = default_templates("dispute");
    s.dispute_keywords = {"dispute", "incorrect", "question"};
    return s;
}

}  // namespace billsync::workflows::followup
