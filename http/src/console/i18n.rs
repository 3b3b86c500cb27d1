//! The console's words in English and Chinese. The language is the `lang` cookie (set by
//! the switch in the header), else the first of `Accept-Language` that the console speaks.

use axum::http::HeaderMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("zh") {
            Some(Lang::Zh)
        } else if s.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The request's language.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(l) = super::cookie(headers, "lang").and_then(|v| Lang::parse(&v)) {
            return l;
        }
        let accept = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // In the order given (weights are nearly always descending as sent).
        accept
            .split(',')
            .filter_map(|part| Lang::parse(part.split(';').next().unwrap_or("")))
            .next()
            .unwrap_or(Lang::En)
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }

    /// The word for `key`.
    pub fn t(self, key: &str) -> &'static str {
        let (en, zh) = match key {
            "title" => ("leadscore console", "leadscore 控制台"),
            "queue" => ("Queue", "线索队列"),
            "rules" => ("Rules", "评分规则"),
            "notifications" => ("Notifications", "通知"),
            "sign in" => ("Sign in", "登录"),
            "sign out" => ("Sign out", "退出"),
            "token" => ("Access token", "访问令牌"),
            "token help" => (
                "The read token or your own reader token from your administrator.",
                "管理员发给你的读取令牌或个人令牌。",
            ),
            "bad token" => ("That token is not valid.", "令牌无效。"),
            "too many" => (
                "Too many sign-in attempts from this address; wait a minute.",
                "此地址登录尝试过多，请一分钟后再试。",
            ),
            "no tokens" => (
                "The console needs at least one token configured (LEADSCORE_READ_TOKEN, LEADSCORE_READER_<NAME> or LEADSCORE_WRITE_TOKEN).",
                "控制台需要至少配置一个令牌（LEADSCORE_READ_TOKEN、LEADSCORE_READER_<NAME> 或 LEADSCORE_WRITE_TOKEN）。",
            ),
            "expired" => (
                "This form has expired; reload the page and try again.",
                "表单已过期，请刷新页面后重试。",
            ),
            "signed in as" => ("Signed in as", "当前用户"),
            "mine" => ("My leads", "我的线索"),
            "best" => ("Top grade", "最高等级"),
            "overdue" => ("Overdue", "已逾期"),
            "rising" => ("Rising", "分数上升"),
            "pool" => ("Pool", "公海池"),
            "all" => ("All", "全部"),
            "lead" => ("Lead", "线索"),
            "score" => ("Score", "分数"),
            "grade" => ("Grade", "等级"),
            "owner" => ("Owner", "负责人"),
            "deadline" => ("Deadline", "跟进期限"),
            "tags" => ("Tags", "标签"),
            "tag" => ("Tag", "标签"),
            "created since" => ("Created since", "创建于"),
            "sort" => ("Sort", "排序"),
            "by score" => ("by score", "按分数"),
            "by updated" => ("by last update", "按最近更新"),
            "by deadline" => ("by deadline", "按跟进期限"),
            "filter" => ("Filter", "筛选"),
            "next page" => ("Next page", "下一页"),
            "no leads" => ("No leads here.", "这里没有线索。"),
            "why" => ("Why this score", "得分明细"),
            "rule" => ("Rule", "规则"),
            "line" => ("Line", "行"),
            "points" => ("Points", "分值"),
            "total" => ("Total", "合计"),
            "grade matched" => ("Grade condition that matched", "命中的等级条件"),
            "open questions" => ("Ask next", "待确认的问题"),
            "history" => ("Score history", "分数历史"),
            "transitions" => ("Grade changes", "等级变化"),
            "assignments" => ("Assignments", "分配记录"),
            "timeline" => ("Events", "事件时间线"),
            "at" => ("At", "时间"),
            "cause" => ("Cause", "原因"),
            "from" => ("From", "从"),
            "to" => ("To", "到"),
            "event" => ("Event", "事件"),
            "type" => ("Type", "类型"),
            "follow up" => ("Record a follow-up", "记录跟进"),
            "note" => ("Note", "备注"),
            "save" => ("Save", "保存"),
            "merge" => ("Merge another lead into this one", "把另一条线索合并到这里"),
            "merge key" => ("The other lead's key", "另一条线索的标识"),
            "merged" => ("Merged.", "已合并。"),
            "followed up" => ("Follow-up recorded.", "已记录跟进。"),
            "no lead" => ("No such lead.", "没有这条线索。"),
            "readers see" => (
                "Your token reads; actions need a writer's token.",
                "你的令牌只能查看；操作需要写入权限。",
            ),
            "running rules" => ("Running rules", "正在运行的规则"),
            "program hash" => ("Program hash", "程序哈希"),
            "no source" => (
                "This deployment runs compiled rules; their text lives in the rules repository.",
                "此部署运行的是编译后的规则；规则原文在规则仓库中。",
            ),
            "file changed" => (
                "The file on disk differs from the running rules (it did not compile, or is being edited).",
                "磁盘上的文件与正在运行的规则不同（未能编译或正在编辑）。",
            ),
            "draft" => ("Try a draft", "试写草稿"),
            "draft help" => (
                "Checked as you type by the same compiler as leadscore check; nothing is applied.",
                "输入时由与 leadscore check 相同的编译器检查；不会生效。",
            ),
            "check" => ("Check and preview", "检查并预览"),
            "no drafts" => (
                "Drafts are checked where the compiler runs: leadscore serve, or leadscore check in CI.",
                "草稿检查需要编译器：请使用 leadscore serve 或在 CI 中运行 leadscore check。",
            ),
            "compiles" => ("The draft compiles.", "草稿编译通过。"),
            "preview" => ("What the draft would change over the stored leads", "草稿对已存线索的影响"),
            "moved" => ("leads would change grade", "条线索等级会变化"),
            "of leads" => ("stored leads replayed", "条已存线索已重放"),
            "movers" => ("Biggest movers", "变化最大的线索"),
            "before" => ("Now", "当前"),
            "after" => ("Draft", "草稿"),
            "shadow" => ("Shadow rules", "影子规则"),
            "variant" => ("A/B variant", "A/B 变体"),
            "none" => ("none", "无"),
            "share" => ("share of leads", "线索占比"),
            "dead letters" => ("Dead letters", "投递失败的通知"),
            "no dead letters" => ("No dead letters.", "没有投递失败的通知。"),
            "channel" => ("Channel", "渠道"),
            "attempts" => ("Attempts", "尝试次数"),
            "reason" => ("Reason", "原因"),
            "retry" => ("Retry", "重试"),
            "retried" => ("Back in the outbox.", "已重新加入发送队列。"),
            "language" => ("中文", "English"),
            "forbidden" => ("Only writers can do that.", "只有具有写入权限的用户才能执行此操作。"),
            "not found" => ("Nothing here.", "页面不存在。"),
            _ => ("?", "?"),
        };
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }
}
